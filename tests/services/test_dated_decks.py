"""Dated decks, their dry run, and carrier layouts: a deck imported to take effect at a moment
leaves the deck in force until then, to the second; the dry run says what would change and
writes nothing; a carrier's per-minute deck bills as the carrier does."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from coobill.errors import BadRequest
from coobill.services import rate_decks, rates
from coobill.services.context import BillingContext
from coobill.services.settings import billing_settings, change_settings
from tests.conftest import FakeClock
from tests.services.conftest import authorize, ended, make_extension, make_rate, rows, settle

HEADER = "prefix,length,initial_cost,initial_time,rate,period,start,end,extensions,remark"
NEW_YEAR = "2027-01-01 00:00"


def deck(*lines: str, header: str = HEADER) -> str:
    return "\n".join([header, *lines]) + "\n"


def shanghai(clock: FakeClock, local: str) -> None:
    """Set the clock to a Shanghai wall-clock moment (UTC+8, no DST)."""
    moment = datetime.strptime(local, "%Y-%m-%d %H:%M:%S")
    clock.now = moment.replace(tzinfo=UTC) - (datetime(2000, 1, 1, 8) - datetime(2000, 1, 1))


async def office(ctx: BillingContext) -> None:
    await change_settings(ctx, timezone="Asia/Shanghai")
    await make_extension(ctx, "100", balance="100")
    await make_rate(ctx, "0044", initial_cost="0.1", rate="0.05", remark="uk 2026")
    await make_rate(ctx, "0033", initial_cost="0.1", rate="0.04", remark="fr 2026")


NEXT_YEAR = deck("0044,0,0.2,60,0.08,60,00:00,23:59,*,uk 2027",
                 "0049,0,0.1,60,0.06,60,00:00,23:59,*,de 2027",
                 "0033,0,0.1,60,0.04,60,00:00,23:59,*,fr 2026")


class TestADatedDeck:
    async def test_it_takes_effect_at_its_moment_to_the_second(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        await office(ctx)
        shanghai(clock, "2026-12-31 12:00:00")
        done = await rate_decks.import_rates(ctx, NEXT_YEAR, effective=NEW_YEAR)
        assert done.written
        assert done.effective == datetime(2027, 1, 1)

        shanghai(clock, "2026-12-31 23:59:59")
        before = await authorize(ctx, "c-before", number="00441234")
        shanghai(clock, "2027-01-01 00:00:00")
        after = await authorize(ctx, "c-after", number="00441234")
        by_id = {v.id: v.fields.remark for v in await rates.list_rates(ctx)}
        assert by_id[before.rate_id] == "uk 2026"  # type: ignore[index]
        assert by_id[after.rate_id] == "uk 2027"  # type: ignore[index]
        # 0049 is new: not in force before the moment
        shanghai(clock, "2026-12-31 23:59:59")
        assert (await rates.quote(ctx, "100", "00491234")).rate is None

        # the call allowed a second before midnight is charged at the old price when it ends
        start = datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC)
        shanghai(clock, "2027-01-01 00:05:00")
        old = await settle(ctx, ended("c-before", number="00441234", billsec=120, start=start))
        new = await settle(ctx, ended("c-after", number="00441234", billsec=120, start=start))
        assert old is not None
        assert new is not None
        assert (old.cost, new.cost) == (Decimal("0.1500"), Decimal("0.2800"))

    async def test_the_old_deck_ends_and_a_planned_one_is_replaced(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        await office(ctx)
        await rate_decks.import_rates(ctx, NEXT_YEAR, effective=NEW_YEAR)
        again = deck("0044,0,0.3,60,0.09,60,00:00,23:59,*,uk from march")
        await rate_decks.import_rates(ctx, again, effective="2027-03-01 00:00")
        spans = [(v.fields.remark, v.fields.valid_from, v.fields.valid_until)
                 for v in await rates.list_rates(ctx)]
        march = datetime(2027, 3, 1)
        assert spans == [
            ("uk 2026", None, datetime(2027, 1, 1)), ("fr 2026", None, datetime(2027, 1, 1)),
            ("uk 2027", datetime(2027, 1, 1), march), ("de 2027", datetime(2027, 1, 1), march),
            ("fr 2026", datetime(2027, 1, 1), march), ("uk from march", march, None)]
        # a deck for a moment before the planned one drops the planned one
        await rate_decks.import_rates(ctx, again, effective="2027-02-01 00:00")
        remarks = [v.fields.remark for v in await rates.list_rates(ctx)]
        assert remarks.count("uk from march") == 1
        assert "uk 2027" in remarks

    @pytest.mark.parametrize(("options", "field"), [
        ({"effective": "next year"}, "from"),
        ({"effective": NEW_YEAR, "replace_all": True}, "from"),
    ])
    async def test_bad_options_are_one_error_and_nothing_written(
        self, ctx: BillingContext, options: dict[str, object], field: str
    ) -> None:
        await office(ctx)
        before = await rows(ctx, "SELECT * FROM rate ORDER BY id")
        with pytest.raises(BadRequest) as bad:
            await rate_decks.import_rates(ctx, NEXT_YEAR, **options)  # type: ignore[arg-type]
        assert bad.value.field == field
        assert await rows(ctx, "SELECT * FROM rate ORDER BY id") == before

    async def test_a_row_ending_before_the_moment_is_refused(self, ctx: BillingContext) -> None:
        await office(ctx)
        text = deck("0044,0,0.2,60,0.08,60,00:00,23:59,*,x,2026-06-01 00:00",
                    header=HEADER + ",valid_until")
        with pytest.raises(BadRequest) as bad:
            await rate_decks.import_rates(ctx, text, effective=NEW_YEAR)
        assert bad.value.field == "valid_until"
        assert "csv line 2" in bad.value.message


class TestTheDryRun:
    async def test_it_lists_added_removed_and_changed_and_writes_nothing(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        await office(ctx)
        before = await rows(ctx, "SELECT * FROM rate ORDER BY id")
        version = (await billing_settings(ctx)).rates_version
        only_uk = deck("0044,0,0.2,60,0.08,60,00:00,23:59,*,uk 2027",
                       "0049,0,0.1,60,0.06,60,00:00,23:59,*,de 2027")
        done = await rate_decks.import_rates(ctx, only_uk, effective=NEW_YEAR, dry_run=True)
        assert not done.written
        assert rate_decks.diff_lines(done.diff) == [
            "+ 0049 (any length, 00:00-23:59, *): 0.1000 for 60 s, then 0.0600 per 60 s",
            "- 0033 (any length, 00:00-23:59, *): 0.1000 for 60 s, then 0.0400 per 60 s",
            "~ 0044 (any length, 00:00-23:59, *): 0.1000 for 60 s, then 0.0500 per 60 s -> "
            "0.2000 for 60 s, then 0.0800 per 60 s",
            "1 added, 1 removed, 1 changed, 0 unchanged",
        ]
        assert await rows(ctx, "SELECT * FROM rate ORDER BY id") == before
        assert (await billing_settings(ctx)).rates_version == version

    async def test_an_added_deck_changes_only_what_it_adds(self, ctx: BillingContext) -> None:
        await office(ctx)
        done = await rate_decks.import_rates(ctx, NEXT_YEAR, dry_run=True)
        # 0044 and 0033 stay as they are (the older rate wins a tie); 0049 is new
        assert [line[:6] for line in rate_decks.diff_lines(done.diff)] == ["+ 0049", "1 adde"]
        replaced = await rate_decks.import_rates(ctx, NEXT_YEAR, replace_all=True, dry_run=True)
        assert rate_decks.diff_lines(replaced.diff)[-1] == (
            "1 added, 0 removed, 1 changed, 1 unchanged")


CARRIER = "prefix,description,rate_per_minute,connect_fee,initial_increment,increment"


class TestCarrierLayouts:
    @pytest.mark.parametrize(("row", "seconds", "expected"), [
        ("44,UK,0.0600", 61, "0.1200"),  # 60/60 by default: two started minutes
        ("44,UK,0.0600,0.0100,30,6", 45, "0.0580"),  # fee + 30 s + three started 6 s
        ("44,UK,0.0600,,1,1", 61, "0.0610"),  # per second
        ("44,UK,0.0600,,30", 31, "0.0600"),  # 30 alone is 30/30
        ("44,UK,0.0123,,1,1", 10, "0.0020"),  # 0.000205 a second rounds half up to 0.0002
    ])
    async def test_each_layout_bills_as_the_carrier_does(
        self, ctx: BillingContext, row: str, seconds: int, expected: str
    ) -> None:
        await make_extension(ctx, "100", balance="10")
        done = await rate_decks.import_rates(ctx, deck(row, header=CARRIER))
        assert done.count == 1
        [view] = await rates.list_rates(ctx)
        assert (view.fields.remark, view.fields.extensions) == ("UK", ("*",))
        quote = await rates.quote(ctx, "100", "4420", seconds=seconds)
        assert quote.cost == Decimal(expected)

    async def test_a_bad_carrier_row_names_its_line_and_column(self, ctx: BillingContext) -> None:
        with pytest.raises(BadRequest) as bad:
            await rate_decks.import_rates(ctx, deck("44,UK,0.06", "33,FR,cheap", header=CARRIER))
        assert "line 3" in bad.value.message
        assert "rate_per_minute" in bad.value.message
        assert await rates.list_rates(ctx) == []
