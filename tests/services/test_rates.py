"""Rates: adding, editing, deleting, enabling; every bad field refused by name; the rate book
every daemon on the ledger sees."""

from __future__ import annotations

from decimal import Decimal

import pytest

from coobill.errors import BadRequest, UnknownRate
from coobill.services import rate_decks, rates
from coobill.services.context import BillingContext
from coobill.services.rate_fields import check_rate_fields
from tests.services.conftest import authorize, make_extension, make_rate, rows

GOOD = {
    "prefix": "00",
    "number_length": "0",
    "initial_cost": "0.1",
    "initial_seconds": "60",
    "rate": "0.05",
    "period_seconds": "60",
    "start": "00:00",
    "end": "23:59",
    "extensions": "*",
}


class TestAddingEditingDeleting:
    async def test_an_added_rate_is_listed_with_its_fields(self, ctx: BillingContext) -> None:
        await make_extension(ctx, "100")
        await make_extension(ctx, "101")
        view = await rates.add_rate(
            ctx, check_rate_fields(**{**GOOD, "extensions": "101, 100", "remark": " intl "})
        )
        [listed] = await rates.list_rates(ctx)
        assert listed == view == await rates.get_rate(ctx, view.id)
        f = listed.fields
        assert (f.prefix, f.initial_cost, f.rate, f.extensions, f.remark, f.enabled) == (
            "00",
            Decimal("0.1000"),
            Decimal("0.0500"),
            ("100", "101"),
            "intl",
            True,
        )

    async def test_an_edit_changes_only_the_fields_given(self, ctx: BillingContext) -> None:
        view = await make_rate(ctx, "00", remark="intl")
        edited = await rates.edit_rate(ctx, view.id, rate="0.07", end="17:59")
        assert (edited.fields.rate, edited.fields.end, edited.fields.remark) == (
            Decimal("0.07"),
            "17:59",
            "intl",
        )
        assert (await rates.get_rate(ctx, view.id)) == edited

    async def test_a_rate_is_disabled_and_enabled_again(self, ctx: BillingContext) -> None:
        await make_extension(ctx, "100", balance="10")
        view = await make_rate(ctx, "00")
        await rates.edit_rate(ctx, view.id, enabled=False)
        assert (await authorize(ctx, "c1")).reason == "no_rate"
        await rates.edit_rate(ctx, view.id, enabled=True)
        assert (await authorize(ctx, "c2")).rate_id == view.id

    async def test_a_deleted_rate_is_gone(self, ctx: BillingContext) -> None:
        view = await make_rate(ctx, "00")
        await rates.delete_rate(ctx, view.id)
        assert await rates.list_rates(ctx) == []
        with pytest.raises(UnknownRate):
            await rates.get_rate(ctx, view.id)

    async def test_editing_or_deleting_an_unknown_rate_raises_unknown_rate(
        self, ctx: BillingContext
    ) -> None:
        with pytest.raises(UnknownRate):
            await rates.edit_rate(ctx, 404, rate="1")
        with pytest.raises(UnknownRate):
            await rates.delete_rate(ctx, 404)

    async def test_an_edit_is_validated_as_a_whole_rate(self, ctx: BillingContext) -> None:
        """A length that was fine becomes too short when the prefix grows."""
        view = await make_rate(ctx, "00", length=4)
        with pytest.raises(BadRequest) as caught:
            await rates.edit_rate(ctx, view.id, prefix="00861")
        assert caught.value.field == "length"
        assert (await rates.get_rate(ctx, view.id)).fields.prefix == "00"

    async def test_a_rate_for_an_unknown_extension_is_refused(self, ctx: BillingContext) -> None:
        await make_extension(ctx, "100")
        with pytest.raises(BadRequest) as caught:
            await rates.add_rate(ctx, check_rate_fields(**{**GOOD, "extensions": "100,999"}))
        assert caught.value.field == "extensions"
        assert "999" in str(caught.value)
        assert await rates.list_rates(ctx) == []


class TestBadFields:
    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"prefix": "00a"}, "prefix"),
            ({"prefix": "+86"}, "prefix"),
            ({"prefix": "1" * 33}, "prefix"),
            ({"number_length": "-1"}, "length"),
            ({"number_length": "x"}, "length"),
            ({"number_length": "1"}, "length"),  # shorter than the prefix
            ({"initial_cost": "-0.1"}, "initial_cost"),
            ({"initial_cost": "0.00001"}, "initial_cost"),
            ({"initial_cost": "NaN"}, "initial_cost"),
            ({"rate": "-0.05"}, "rate"),
            ({"rate": "Infinity"}, "rate"),
            ({"initial_seconds": "-1"}, "initial_time"),
            ({"initial_seconds": "1.5"}, "initial_time"),
            ({"period_seconds": "0"}, "period"),
            ({"period_seconds": "-60"}, "period"),
            ({"period_seconds": 60.0}, "period"),
            ({"start": "24:00"}, "start"),
            ({"start": "9:00"}, "start"),
            ({"start": "08:60"}, "start"),
            ({"end": "noon"}, "end"),
            ({"end": ""}, "end"),
            ({"extensions": " , "}, "extensions"),
        ],
    )
    def test_a_bad_field_is_refused_by_its_name(self, changes: dict, field: str) -> None:  # type: ignore[type-arg]
        with pytest.raises(BadRequest) as caught:
            check_rate_fields(**{**GOOD, **changes})
        assert caught.value.field == field

    def test_an_empty_prefix_and_zero_costs_make_a_valid_free_rate(self) -> None:
        fields = check_rate_fields(**{**GOOD, "prefix": "", "initial_cost": "0", "rate": "0"})
        assert (fields.prefix, fields.initial_cost, fields.rate) == ("", 0, 0)

    def test_a_window_crossing_midnight_is_valid(self) -> None:
        fields = check_rate_fields(**{**GOOD, "start": "22:00", "end": "06:00"})
        assert (fields.start, fields.end) == ("22:00", "06:00")


class TestRateBook:
    async def test_a_rate_changed_by_one_daemon_is_used_by_another_on_its_next_read(
        self, ctx: BillingContext, other_daemon: BillingContext
    ) -> None:
        """The other daemon rereads the rates version in every authorization, so the change
        shows on the very next one."""
        await make_extension(ctx, "100", balance="10")
        assert (await authorize(other_daemon, "c1")).reason == "no_rate"
        view = await make_rate(ctx, "00")
        assert (await authorize(other_daemon, "c2")).rate_id == view.id
        await rates.edit_rate(ctx, view.id, prefix="01")
        assert (await authorize(other_daemon, "c3")).reason == "no_rate"

    async def test_every_change_moves_the_rates_version_on(self, ctx: BillingContext) -> None:
        async def version() -> int:
            [(value,)] = await rows(ctx, "SELECT value FROM setting WHERE key = 'rates_version'")
            return int(value)

        view = await make_rate(ctx, "00")
        first = await version()
        await rates.edit_rate(ctx, view.id, remark="x")
        await rates.delete_rate(ctx, view.id)
        await rate_decks.import_rates(ctx, rate_decks.rates_to_csv([view]))
        assert await version() == first + 3
