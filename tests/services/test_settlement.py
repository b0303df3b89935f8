"""Settling a call when it ends: its record, its exact debit and its hold's release, once."""

from __future__ import annotations

from decimal import Decimal

from coobill.services import extensions, rates
from coobill.services.audit import audit
from coobill.services.commands import Disposition
from coobill.services.context import BillingContext
from coobill.services.settings import change_settings
from tests.services.conftest import authorize, ended, make_extension, make_rate, rows, settle


async def call_record(ctx: BillingContext, uniqueid: str) -> dict[str, object]:
    [row] = await rows(
        ctx,
        "SELECT caller_extension, dialled_number, billable_seconds, cost, disposition, gated, "
        "rate_id, rate_label, trunk FROM call WHERE uniqueid = :u",
        u=uniqueid,
    )
    keys = ("extension", "number", "billsec", "cost", "disposition", "gated", "rate_id",
            "rate_label", "trunk")
    record = dict(zip(keys, row, strict=True))
    record["cost"] = Decimal(int(record["cost"])) / 10000  # type: ignore[call-overload]
    record["gated"] = bool(record["gated"])
    return record


async def balance(ctx: BillingContext, number: str = "100") -> Decimal:
    return (await extensions.show_extension(ctx, number)).balance


async def held(ctx: BillingContext) -> list[str]:
    return [u for (u,) in await rows(
        ctx, "SELECT uniqueid FROM reservation WHERE state IN ('held', 'flagged') ORDER BY id")]


class TestAnsweredCalls:
    async def test_an_answered_call_is_recorded_debited_and_its_hold_released(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100", balance="10", name="Alice")
        view = await make_rate(ctx, "00", remark="intl")
        await authorize(ctx, "c1")
        settlement = await settle(ctx, ended("c1", billsec=61, name="Alice"))
        assert settlement is not None
        assert (settlement.cost, settlement.debited, settlement.balance_after) == (
            Decimal("0.15"), True, Decimal("9.85"),
        )
        assert settlement.rate_id == view.id
        assert await balance(ctx) == Decimal("9.85")
        assert await held(ctx) == []
        record = await call_record(ctx, "c1")
        assert record == {
            "extension": "100", "number": "0012345678", "billsec": 61, "cost": Decimal("0.15"),
            "disposition": "ANSWERED", "gated": True, "rate_id": view.id,
            "rate_label": f"#{view.id} 00 intl", "trunk": "PJSIP/carrier-0001",
        }

    async def test_a_call_is_charged_at_the_price_it_was_allowed_at(
        self, ctx: BillingContext
    ) -> None:
        """A rate edited while the call talks does not change what the call costs."""
        await make_extension(ctx, "100", balance="10")
        view = await make_rate(ctx, "00")
        await authorize(ctx, "c1")
        await rates.edit_rate(ctx, view.id, initial_cost="5")
        settlement = await settle(ctx, ended("c1", billsec=61))
        assert settlement is not None
        assert settlement.cost == Decimal("0.15")

    async def test_billable_seconds_beyond_the_limit_are_not_charged(
        self, ctx: BillingContext
    ) -> None:
        """Dial's L() cut the dialled party at the limit: a CDR that says more counts the
        caller's own earlier answer (ASTERISK.md §8), and a prepaid balance never goes below
        zero for it (628 s on a 600 s / 6.00 hold is 6.00)."""
        await make_extension(ctx, "100", balance="6")
        await make_rate(ctx, "00", initial_cost="0", initial_time=0, rate="0.01", period=1)
        verdict = await authorize(ctx, "c1")
        assert (verdict.limit_seconds, verdict.held) == (600, Decimal("6"))
        settlement = await settle(ctx, ended("c1", billsec=628))
        assert settlement is not None
        assert settlement.cost == Decimal("6")
        assert await balance(ctx) == Decimal("0")
        [(billsec,)] = await rows(ctx, "SELECT billable_seconds FROM call WHERE uniqueid = 'c1'")
        assert billsec == 600
        assert (await audit(ctx)).ok


class TestExactlyOnce:
    async def test_a_call_settled_twice_is_debited_once(self, ctx: BillingContext) -> None:
        await make_extension(ctx, "100", balance="10")
        await make_rate(ctx, "00")
        await authorize(ctx, "c1")
        first = await settle(ctx, ended("c1", billsec=61))
        again = await settle(ctx, ended("c1", billsec=61))
        assert first is not None
        assert first.debited
        assert again is not None
        assert (again.debited, again.cost) == (False, Decimal("0.15"))
        assert await balance(ctx) == Decimal("9.85")
        debits = "SELECT count(*) FROM ledger_entry WHERE kind = 'call_debit'"
        assert await rows(ctx, debits) == [(1,)]

    async def test_a_repeat_with_other_figures_changes_nothing(self, ctx: BillingContext) -> None:
        await make_extension(ctx, "100", balance="10")
        await make_rate(ctx, "00")
        await authorize(ctx, "c1")
        await settle(ctx, ended("c1", billsec=61))
        again = await settle(ctx, ended("c1", billsec=3600))
        assert again is not None
        assert not again.debited
        assert await balance(ctx) == Decimal("9.85")


class TestCallsThatCostNothing:
    async def test_an_unanswered_call_costs_nothing_and_releases_its_hold(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100", balance="10")
        await make_rate(ctx, "00")
        await authorize(ctx, "c1")
        settlement = await settle(ctx, ended("c1", answered=False))
        assert settlement is not None
        assert (settlement.cost, settlement.debited) == (0, True)
        assert await held(ctx) == []
        assert await balance(ctx) == Decimal("10")
        record = await call_record(ctx, "c1")
        assert (record["disposition"], record["cost"], record["gated"]) == ("NO ANSWER", 0, True)

    async def test_a_busy_call_with_billsec_reported_still_costs_nothing(
        self, ctx: BillingContext
    ) -> None:
        from dataclasses import replace

        await make_extension(ctx, "100", balance="10")
        await make_rate(ctx, "00")
        await authorize(ctx, "c1")
        busy = replace(ended("c1", billsec=30), disposition=Disposition.BUSY)
        settlement = await settle(ctx, busy)
        assert settlement is not None
        assert settlement.cost == 0

    async def test_an_unbilled_call_is_recorded_at_no_cost(self, ctx: BillingContext) -> None:
        await make_extension(ctx, "100", balance="10", billing=False)
        await make_rate(ctx, "00")
        await authorize(ctx, "c1")
        settlement = await settle(ctx, ended("c1", billsec=600))
        assert settlement is not None
        assert settlement.cost == 0
        record = await call_record(ctx, "c1")
        assert (record["cost"], record["gated"], record["rate_id"]) == (0, True, None)
        assert await held(ctx) == []

    async def test_a_call_allowed_free_for_want_of_a_rate_costs_nothing(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100", balance="10")
        await authorize(ctx, "c1")
        await make_rate(ctx, "00")  # a rate appearing mid-call does not bill it
        settlement = await settle(ctx, ended("c1", billsec=600))
        assert settlement is not None
        assert settlement.cost == 0


class TestUngatedCalls:
    async def test_an_outbound_call_that_missed_the_gate_is_billed_and_marked_ungated(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100", balance="10")
        view = await make_rate(ctx, "00")
        settlement = await settle(ctx, ended("c1", billsec=61))
        assert settlement is not None
        assert (settlement.cost, settlement.rate_id) == (
            Decimal("0.15"), view.id,
        )
        record = await call_record(ctx, "c1")
        assert (record["gated"], record["cost"]) == (False, Decimal("0.15"))
        assert (await audit(ctx)).ok

    async def test_an_ungated_call_with_billing_off_is_recorded_at_no_cost(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100", balance="10")
        await make_rate(ctx, "00")
        await change_settings(ctx, billing="off")
        await settle(ctx, ended("c1", billsec=61))
        record = await call_record(ctx, "c1")
        assert (record["gated"], record["cost"]) == (False, 0)

    async def test_an_ungated_call_of_an_extension_with_billing_off_costs_nothing(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100", balance="10", billing=False)
        await make_rate(ctx, "00")
        await settle(ctx, ended("c1", billsec=61))
        assert (await call_record(ctx, "c1"))["cost"] == 0

    async def test_an_ungated_call_of_an_unknown_extension_is_recorded_at_no_cost(
        self, ctx: BillingContext
    ) -> None:
        """As the gate lets an unknown extension call free: there is no balance to debit."""
        await make_rate(ctx, "00")
        settlement = await settle(ctx, ended("c1", extension="404", billsec=61))
        assert settlement is not None
        assert settlement.balance_after is None
        assert (await call_record(ctx, "c1"))["cost"] == 0
        assert await rows(ctx, "SELECT count(*) FROM ledger_entry") == [(0,)]
        assert (await audit(ctx)).ok

    async def test_an_internal_call_to_another_extension_is_not_recorded(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100", balance="10")
        await make_extension(ctx, "101")
        assert await settle(ctx, ended("c1", number="101", billsec=61, trunk=None)) is None
        assert await rows(ctx, "SELECT count(*) FROM call") == [(0,)]

    async def test_a_call_to_a_phone_endpoint_is_not_recorded(self, ctx: BillingContext) -> None:
        await make_extension(ctx, "100", balance="10")
        await make_rate(ctx, "")
        assert await settle(ctx, ended("c1", number="555", billsec=61, trunk="102")) is None
        assert await rows(ctx, "SELECT count(*) FROM call") == [(0,)]


class TestRecordsFromBeforeTheUpgrade:
    async def test_a_channel_recorded_before_migration_0004_is_not_charged_again(
        self, ctx: BillingContext
    ) -> None:
        """Its record knows no PBX nor leg (pbx ''): a duplicate Cdr after the upgrade finds
        it and records and debits nothing."""
        await make_extension(ctx, "100", balance="10")
        await make_rate(ctx, "00")
        await settle(ctx, ended("c1", billsec=61))
        async with ctx.uow() as uow:
            from sqlalchemy import text

            await uow.session.execute(text("UPDATE call SET pbx = '', leg = ''"))
            await uow.commit()
        again = await settle(ctx, ended("c1", billsec=61))
        assert again is not None
        assert not again.debited
        assert await balance(ctx) == Decimal("9.85")
