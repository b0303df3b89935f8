"""Extensions: creating and editing them, recharging, adjusting, and the amounts allowed."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from coobill.errors import BadRequest, UnknownExtension
from coobill.money import parse_amount
from coobill.services import balances, extension_listing, extensions
from coobill.services.audit import audit
from coobill.services.context import BillingContext
from coobill.services.extensions import ExtensionChanges
from tests.services.conftest import authorize, make_extension, make_rate, rows


class TestCreatingAndEditing:
    async def test_setting_a_new_extension_creates_it_with_billing_off_and_nothing_in_it(
        self, ctx: BillingContext
    ) -> None:
        """A new extension starts prepaid, unlocked, billing off, with zero balance."""
        view = await extensions.set_extension(ctx, "100", ExtensionChanges())
        assert (view.extension, view.billing, view.payment, view.locked) == (
            "100", False, "prepaid", False,
        )
        assert view.balance == view.credit_limit == view.total_recharged == Decimal("0")

    async def test_setting_an_existing_extension_changes_only_the_fields_given(
        self, ctx: BillingContext
    ) -> None:
        await extensions.set_extension(
            ctx, "100", ExtensionChanges(name="Alice", billing=True, credit_limit=Decimal("5"))
        )
        view = await extensions.set_extension(ctx, "100", ExtensionChanges(locked=True))
        assert (view.name, view.billing, view.credit_limit, view.locked) == (
            "Alice", True, Decimal("5.0000"), True,
        )
        shown = await extensions.show_extension(ctx, "100")
        assert shown == view

    async def test_changing_the_payment_method_resets_total_recharged(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100", balance="30")
        view = await extensions.set_extension(ctx, "100", ExtensionChanges(payment="postpaid"))
        assert view.total_recharged == 0
        assert view.balance == Decimal("30")  # the money stays; only the running total resets

    async def test_setting_the_same_payment_method_keeps_total_recharged(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100", balance="30")
        view = await extensions.set_extension(ctx, "100", ExtensionChanges(payment="prepaid"))
        assert view.total_recharged == Decimal("30")

    async def test_batch_edit_changes_every_extension_or_none(self, ctx: BillingContext) -> None:
        await make_extension(ctx, "100")
        await make_extension(ctx, "101")
        with pytest.raises(UnknownExtension):
            await extensions.edit_extensions(
                ctx, ["100", "999", "101"], ExtensionChanges(locked=True)
            )
        assert not (await extensions.show_extension(ctx, "100")).locked
        views = await extensions.edit_extensions(ctx, ["100", "101"], ExtensionChanges(locked=True))
        assert [v.locked for v in views] == [True, True]

    async def test_a_bad_field_is_refused_by_name_and_nothing_is_created(
        self, ctx: BillingContext
    ) -> None:
        cases = [
            ("", ExtensionChanges(), "extension"),
            ("10 0", ExtensionChanges(), "extension"),
            ("x" * 33, ExtensionChanges(), "extension"),
            ("100", ExtensionChanges(payment="cash"), "payment"),
            ("100", ExtensionChanges(credit_limit=Decimal("-1")), "credit_limit"),
            ("100", ExtensionChanges(credit_limit=Decimal("0.00001")), "credit_limit"),
            ("100", ExtensionChanges(name="n" * 129), "name"),
        ]
        for number, changes, field in cases:
            with pytest.raises(BadRequest) as caught:
                await extensions.set_extension(ctx, number, changes)
            assert caught.value.field == field, (number, changes)
        assert await rows(ctx, "SELECT number FROM extension") == []

    async def test_showing_an_unknown_extension_raises_unknown_extension(
        self, ctx: BillingContext
    ) -> None:
        with pytest.raises(UnknownExtension):
            await extensions.show_extension(ctx, "404")


class TestListing:
    async def test_extensions_are_listed_in_numeric_order_and_filtered(
        self, ctx: BillingContext
    ) -> None:
        for number in ("1000", "101", "99"):
            await make_extension(ctx, number)
        await extensions.set_extension(
            ctx, "101", ExtensionChanges(locked=True, payment="postpaid")
        )
        views, total = await extension_listing.list_extensions(ctx)
        assert ([v.extension for v in views], total) == (["99", "101", "1000"], 3)
        locked, _ = await extension_listing.list_extensions(ctx, locked=True)
        assert [v.extension for v in locked] == ["101"]
        unlocked, _ = await extension_listing.list_extensions(ctx, locked=False, payment="prepaid")
        assert [v.extension for v in unlocked] == ["99", "1000"]

    async def test_a_search_matches_part_of_the_number_or_the_name_in_any_case(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100", name="Alice Martin")
        await make_extension(ctx, "201", name="Bob")
        by_name, _ = await extension_listing.list_extensions(ctx, search="martin")
        by_number, _ = await extension_listing.list_extensions(ctx, search="20")
        assert [v.extension for v in by_name] == ["100"]
        assert [v.extension for v in by_number] == ["201"]

    async def test_the_listing_shows_what_live_calls_hold(self, ctx: BillingContext) -> None:
        await make_extension(ctx, "100", balance="10")
        await make_rate(ctx)
        verdict = await authorize(ctx, "call-1")
        views, _ = await extension_listing.list_extensions(ctx)
        assert views[0].reserved == verdict.held > 0
        assert views[0].funds_available == Decimal("10") - verdict.held


class TestRecharging:
    async def test_a_recharge_adds_to_the_balance_and_the_total_recharged(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100", credit="5")
        [record] = await balances.recharge(ctx, ["100"], "12.3456", who="alice")
        assert (record.balance_before, record.amount, record.balance_after) == (
            Decimal("0"), Decimal("12.3456"), Decimal("12.3456"),
        )
        [record] = await balances.recharge(ctx, ["100"], "0.0001")
        assert record.balance_before == Decimal("12.3456")
        view = await extensions.show_extension(ctx, "100")
        assert (view.balance, view.total_recharged) == (Decimal("12.3457"), Decimal("12.3457"))

    async def test_a_batch_recharge_credits_every_extension_once(self, ctx: BillingContext) -> None:
        await make_extension(ctx, "100")
        await make_extension(ctx, "101")
        records = await balances.recharge(ctx, ["100", "101", "100"], "5")
        assert len(records) == 2
        for number in ("100", "101"):
            assert (await extensions.show_extension(ctx, number)).balance == Decimal("5")

    async def test_a_batch_recharge_with_one_unknown_extension_credits_none(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100")
        await make_extension(ctx, "101")
        with pytest.raises(UnknownExtension):
            await balances.recharge(ctx, ["100", "101", "999"], "5")
        for number in ("100", "101"):
            view = await extensions.show_extension(ctx, number)
            assert (view.balance, view.total_recharged) == (0, 0)
        assert await rows(ctx, "SELECT id FROM ledger_entry") == []
        assert await rows(ctx, "SELECT id FROM recharge") == []

    async def test_a_recharge_of_no_extension_is_refused(self, ctx: BillingContext) -> None:
        with pytest.raises(BadRequest) as caught:
            await balances.recharge(ctx, [], "5")
        assert caught.value.field == "extensions"


BAD_AMOUNTS = [
    "-5", "0", "0.0000", "-0", "NaN", "nan", "sNaN", "Infinity", "-Infinity", "inf",
    "1.00001", "0.00005", "1e-5", "", "  ", "abc", "1,5", "0x10", "1_000", "５", "١٢", "1e",
    "100000000000", "1e999999999", "123456789012345678901234567890.00001",
]


class TestAmounts:
    """Amounts are decimal text with at most 4 places of value. Scientific notation and
    trailing zeros are accepted when the value they write is exact to 4 places ("1e3" is
    1000.0000, "1.50000" is 1.5000); anything else is refused before the ledger is touched."""

    @pytest.mark.parametrize("amount", BAD_AMOUNTS)
    def test_a_bad_amount_is_refused_naming_its_field(self, amount: str) -> None:
        with pytest.raises(BadRequest) as caught:
            parse_amount(amount, field="amount", allow_zero=False)
        assert caught.value.field == "amount"

    async def test_a_bad_recharge_amount_changes_nothing(self, ctx: BillingContext) -> None:
        await make_extension(ctx, "100")
        for amount in BAD_AMOUNTS:
            with pytest.raises(BadRequest):
                await balances.recharge(ctx, ["100"], amount)
        assert (await extensions.show_extension(ctx, "100")).balance == 0
        assert await rows(ctx, "SELECT id FROM ledger_entry") == []

    @pytest.mark.parametrize(
        ("amount", "value"),
        [("1e3", "1000"), ("1E-2", "0.01"), ("1.50000", "1.5"), (" 7 ", "7"), ("+2.5", "2.5"),
         (".5", "0.5"), ("99999999999.9999", "99999999999.9999")],
    )
    def test_a_valid_amount_in_any_decimal_spelling_is_read_exactly(
        self, amount: str, value: str
    ) -> None:
        assert parse_amount(amount) == Decimal(value)

    async def test_the_largest_amount_with_four_places_is_stored_exactly(
        self, ctx: BillingContext
    ) -> None:
        highest = Decimal("99999999999.9999")  # billing.max_balance at its own maximum
        ctx = dataclasses.replace(ctx, config=ctx.config.model_copy(update={
            "billing": ctx.config.billing.model_copy(update={"max_balance": highest})}))
        await make_extension(ctx, "100")
        await balances.recharge(ctx, ["100"], "99999999998.9999")
        await balances.recharge(ctx, ["100"], "1e0")
        view = await extensions.show_extension(ctx, "100")
        assert view.balance == highest
        assert await rows(ctx, "SELECT balance FROM extension") == [(999999999999999,)]

    @pytest.mark.parametrize("amount", [1.5, True])
    def test_a_float_or_bool_is_never_taken_as_an_amount(self, amount: object) -> None:
        with pytest.raises(BadRequest):
            parse_amount(amount)  # type: ignore[arg-type]

    def test_parsed_amounts_always_have_four_places(self) -> None:
        assert str(parse_amount("3")) == "3.0000"
        assert str(parse_amount(Decimal("2.5"))) == "2.5000"
        assert str(parse_amount(7)) == "7.0000"


class TestAdjusting:
    async def test_a_negative_adjustment_lowers_the_balance_through_the_ledger(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100", balance="10")
        view = await balances.adjust(ctx, "100", "-2.5", who="alice", note="refund error")
        assert view.balance == Decimal("7.5")
        assert view.total_recharged == Decimal("10")  # a correction is not a recharge
        [(kind, who)] = await rows(
            ctx, "SELECT kind, who FROM ledger_entry WHERE kind = 'adjustment'"
        )
        assert (kind, who) == ("adjustment", "alice: refund error")
        assert (await audit(ctx)).ok

    async def test_a_zero_or_bad_adjustment_is_refused(self, ctx: BillingContext) -> None:
        await make_extension(ctx, "100", balance="10")
        for amount in ("0", "-0", "NaN", "1.00001", "-1e-5"):
            with pytest.raises(BadRequest):
                await balances.adjust(ctx, "100", amount)
        assert (await extensions.show_extension(ctx, "100")).balance == Decimal("10")

    async def test_adjusting_an_unknown_extension_raises_unknown_extension(
        self, ctx: BillingContext
    ) -> None:
        with pytest.raises(UnknownExtension):
            await balances.adjust(ctx, "404", "5")
