"""A carrier's deck as CSV: imported all or nothing, exported and imported back unchanged."""

from __future__ import annotations

from decimal import Decimal

import pytest

from coobill.errors import BadRequest
from coobill.services import rate_decks, rates
from coobill.services.context import BillingContext
from tests.services.conftest import make_extension, make_rate, rows

HEADER = "enabled,remark,prefix,length,initial_cost,initial_time,rate,period,start,end,extensions"


def deck(*lines: str, header: str = HEADER) -> str:
    return "\n".join([header, *lines]) + "\n"


class TestImport:
    async def test_every_row_of_a_deck_becomes_a_rate(self, ctx: BillingContext) -> None:
        await make_extension(ctx, "100")
        count = await rate_decks.import_rates(
            ctx,
            deck(
                '1,mobile,0013,11,0.1,60,0.05,60,00:00,23:59,*',
                '0,"night, cheap",00,0,0,0,0.01,30,22:00,06:00,"100"',
            ),
        )
        assert count.count == 2
        first, second = await rates.list_rates(ctx)
        assert (first.fields.prefix, first.fields.number_length, first.fields.enabled) == (
            "0013", 11, True,
        )
        assert (second.fields.remark, second.fields.enabled, second.fields.extensions) == (
            "night, cheap", False, ("100",),
        )

    async def test_the_optional_columns_may_be_left_out_and_a_bom_is_ignored(
        self, ctx: BillingContext
    ) -> None:
        text = "\ufeff" + deck(
            "00,0,0.1,60,0.05,60,00:00,23:59,*",
            header="prefix,length,initial_cost,initial_time,rate,period,start,end,extensions",
        )
        assert (await rate_decks.import_rates(ctx, text)).count == 1
        [view] = await rates.list_rates(ctx)
        assert (view.fields.enabled, view.fields.remark) == (True, "")

    async def test_one_bad_row_imports_nothing_and_names_its_line(
        self, ctx: BillingContext
    ) -> None:
        await make_rate(ctx, "9")
        good = "1,,00,0,0.1,60,0.05,60,00:00,23:59,*"
        bad_rows = [
            ("1,,00x,0,0.1,60,0.05,60,00:00,23:59,*", "prefix"),
            ("1,,00,0,-0.1,60,0.05,60,00:00,23:59,*", "initial_cost"),
            ("1,,00,0,0.1,60,0.05,0,00:00,23:59,*", "period"),
            ("1,,00,0,0.1,60,0.05,60,25:00,23:59,*", "start"),
            ("maybe,,00,0,0.1,60,0.05,60,00:00,23:59,*", "enabled"),
            ("1,,00,0,0.1,60,0.05,60,00:00,23:59,", "extensions"),
        ]
        for bad_row, field in bad_rows:
            with pytest.raises(BadRequest) as caught:
                await rate_decks.import_rates(ctx, deck(good, good, bad_row, good),
                                              replace_all=True)
            assert str(caught.value).startswith("csv line 4: "), bad_row
            assert caught.value.field == field, bad_row
        assert [v.fields.prefix for v in await rates.list_rates(ctx)] == ["9"]

    async def test_a_deck_naming_an_unknown_extension_imports_nothing(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100")
        with pytest.raises(BadRequest) as caught:
            await rate_decks.import_rates(
                ctx,
                deck("1,,00,0,0.1,60,0.05,60,00:00,23:59,100", "1,,01,0,0,0,0,1,00:00,23:59,555"),
            )
        assert caught.value.field == "extensions"
        assert "555" in str(caught.value)
        assert await rates.list_rates(ctx) == []

    async def test_a_deck_without_a_needed_column_is_refused(self, ctx: BillingContext) -> None:
        with pytest.raises(BadRequest) as caught:
            await rate_decks.import_rates(ctx, "prefix,length\n00,0\n")
        assert caught.value.field == "file"
        assert "initial_cost" in str(caught.value)

    async def test_replace_swaps_every_rate_for_the_deck(self, ctx: BillingContext) -> None:
        await make_rate(ctx, "9")
        await rate_decks.import_rates(ctx, deck("1,,00,0,0.1,60,0.05,60,00:00,23:59,*"),
                                      replace_all=True)
        assert [v.fields.prefix for v in await rates.list_rates(ctx)] == ["00"]

    async def test_without_replace_the_deck_is_added_to_the_rates(
        self, ctx: BillingContext
    ) -> None:
        await make_rate(ctx, "9")
        await rate_decks.import_rates(ctx, deck("1,,00,0,0.1,60,0.05,60,00:00,23:59,*"))
        assert [v.fields.prefix for v in await rates.list_rates(ctx)] == ["9", "00"]


class TestExport:
    async def test_an_exported_deck_imports_back_to_the_same_rates(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100")
        await make_extension(ctx, "101")
        await make_rate(ctx, "00", remark='intl, "best"', extensions="100,101")
        await make_rate(ctx, "", initial_cost="0", initial_time=0, rate="0.0001", period=1,
                        start="22:00", end="06:59", enabled=False)
        await make_rate(ctx, "0086", length=13, initial_cost="1.2345", remark="=cmd")
        before = [v.fields for v in await rates.list_rates(ctx)]
        exported = rate_decks.rates_to_csv(await rates.list_rates(ctx))
        await rate_decks.import_rates(ctx, exported, replace_all=True)
        assert [v.fields for v in await rates.list_rates(ctx)] == before
        assert rate_decks.rates_to_csv(await rates.list_rates(ctx)) == exported


class TestCarrierDeck:
    async def test_a_deck_of_twenty_thousand_prefixes_is_imported_and_quoted_right(
        self, ctx: BillingContext
    ) -> None:
        """Twenty thousand rows in one transaction; the longest prefix wins for each number."""
        lines = ["1,,00,0,0.5,60,0.5,60,00:00,23:59,*"]  # a catch-all for international
        lines += [
            f"1,dest {i},00{i:05d},0,0.{i % 10}000,60,0.0{i % 7}00,60,00:00,23:59,*"
            for i in range(20_000)
        ]
        await make_extension(ctx, "100", balance="100")
        assert (await rate_decks.import_rates(ctx, deck(*lines))).count == 20_001
        assert await rows(ctx, "SELECT count(*), count(DISTINCT prefix) FROM rate") == [
            (20_001, 20_001)
        ]
        for i in (0, 7, 12_345, 19_999):
            q = await rates.quote(ctx, "100", f"00{i:05d}4567", seconds=61)
            assert q.rate is not None
            assert q.rate.remark == f"dest {i}"
            assert q.cost == Decimal(f"0.{i % 10}") + Decimal(f"0.0{i % 7}")
        q = await rates.quote(ctx, "100", "0099")
        assert q.rate is not None
        assert q.rate.prefix == "00"
