"""The ledger and its audit: every balance change is an entry; the audit finds any tampering."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import text

from coobill.services import extensions, reservations
from coobill.services.audit import audit
from coobill.services.context import BillingContext
from coobill.services.extensions import ExtensionChanges
from tests.services.conftest import authorize, ended, make_extension, make_rate, rows, settle


async def execute(ctx: BillingContext, sql: str, **params: object) -> None:
    async with ctx.uow() as uow:
        await uow.session.execute(text(sql), params)
        await uow.commit()


async def mixed_series(ctx: BillingContext) -> None:
    """Recharges, calls, corrections and edits, as a day at the front desk goes."""
    await make_extension(ctx, "100", balance="20", credit="5", name="Alice")
    await make_extension(ctx, "101", balance="3.3333", name="Bob")
    await make_rate(ctx, "00", initial_cost="0.1234", initial_time=30, rate="0.0567", period=6)
    await authorize(ctx, "c1", "100")
    await settle(ctx, ended("c1", extension="100", billsec=125))
    await extensions.recharge(ctx, ["100", "101"], "1.0001")
    await authorize(ctx, "c2", "101")
    await settle(ctx, ended("c2", extension="101", billsec=0))  # unanswered: no entry
    await extensions.adjust(ctx, "101", "-0.3333", note="typo")
    await extensions.set_extension(ctx, "100", ExtensionChanges(payment="postpaid"))
    await authorize(ctx, "c3", "101")
    await settle(ctx, ended("c3", extension="101", billsec=7))
    await settle(ctx, ended("c3", extension="101", billsec=7))  # AMI repeated itself
    await authorize(ctx, "c4", "100")  # still live: holds, but is not in the ledger
    await reservations.charge(ctx, "c4", 61)
    await authorize(ctx, "c5", "101")
    await reservations.release(ctx, "c5")


class TestLedger:
    async def test_every_balance_change_is_an_entry_carrying_the_balance_after(
        self, ctx: BillingContext
    ) -> None:
        await mixed_series(ctx)
        entries = await rows(
            ctx,
            "SELECT e.number, l.kind, l.amount, l.balance_after FROM ledger_entry l "
            "JOIN extension e ON e.id = l.extension_id ORDER BY l.id",
        )
        kinds = [(number, kind) for number, kind, _, _ in entries]
        assert kinds == [
            ("100", "recharge"), ("101", "recharge"), ("100", "call_debit"),
            ("100", "recharge"), ("101", "recharge"), ("101", "adjustment"),
            ("101", "call_debit"), ("100", "call_debit"),
        ]
        for number in ("100", "101"):
            view = await extensions.show_extension(ctx, number)
            mine = [(amount, after) for n, _, amount, after in entries if n == number]
            assert Decimal(sum(a for a, _ in mine)) / 10000 == view.balance
            assert Decimal(mine[-1][1]) / 10000 == view.balance

    async def test_a_call_is_debited_its_exact_cost(self, ctx: BillingContext) -> None:
        await make_extension(ctx, "100", balance="20")
        await make_rate(ctx, "00", initial_cost="0.1234", initial_time=30, rate="0.0567", period=6)
        await authorize(ctx, "c1")
        settlement = await settle(ctx, ended("c1", billsec=125))
        # 30 s for 0.1234, then 95 s = 16 started periods of 6 s at 0.0567
        assert settlement is not None and settlement.cost == Decimal("1.0306")
        assert (await extensions.show_extension(ctx, "100")).balance == Decimal("18.9694")


class TestAudit:
    async def test_the_audit_passes_after_a_mixed_series_of_changes(
        self, ctx: BillingContext
    ) -> None:
        await mixed_series(ctx)
        report = await audit(ctx)
        assert report.problems == []
        assert (report.extensions, report.entries) == (2, 8)

    async def test_the_audit_of_an_empty_ledger_passes(self, ctx: BillingContext) -> None:
        report = await audit(ctx)
        assert report.ok and report.extensions == report.entries == 0

    async def test_a_balance_changed_behind_the_ledgers_back_is_reported(
        self, ctx: BillingContext
    ) -> None:
        await mixed_series(ctx)
        await execute(ctx, "UPDATE extension SET balance = balance + 1 WHERE number = '101'")
        report = await audit(ctx)
        assert not report.ok
        assert len(report.problems) == 1
        assert report.problems[0].startswith("extension 101: balance ")

    async def test_a_rewritten_ledger_entry_is_reported(self, ctx: BillingContext) -> None:
        await mixed_series(ctx)
        await execute(
            ctx,
            "UPDATE ledger_entry SET amount = amount + 1 WHERE id = "
            "(SELECT min(id) FROM ledger_entry WHERE kind = 'adjustment')",
        )
        problems = (await audit(ctx)).problems
        assert any(p.startswith("extension 101:") for p in problems)
        assert any(p.startswith("ledger entry ") for p in problems)

    async def test_a_deleted_call_debit_is_reported(self, ctx: BillingContext) -> None:
        await mixed_series(ctx)
        await execute(ctx, "DELETE FROM ledger_entry WHERE reference = 'c3'")
        problems = (await audit(ctx)).problems
        assert any("call c3: cost" in p for p in problems)

    async def test_a_call_cost_changed_after_settlement_is_reported(
        self, ctx: BillingContext
    ) -> None:
        await mixed_series(ctx)
        await execute(ctx, "UPDATE call SET cost = cost + 1 WHERE uniqueid = 'c1'")
        assert any("call c1: cost" in p for p in (await audit(ctx)).problems)

    async def test_a_hold_left_behind_by_a_settled_call_is_reported(
        self, ctx: BillingContext
    ) -> None:
        await mixed_series(ctx)
        await execute(
            ctx,
            "INSERT INTO reservation (uniqueid, extension_number, number, channel, amount, "
            "billed, tariff, rate_label, state, note, created_at) VALUES "
            "('c1', '100', '00', '', 10000, true, '', '', 'held', '', '2026-11-22 14:00:00')",
        )
        assert "1 holds belong to calls already settled" in (await audit(ctx)).problems

    async def test_money_is_stored_as_integer_ten_thousandths(self, ctx: BillingContext) -> None:
        await make_extension(ctx, "100", balance="12.3456", credit="0.0001")
        assert await rows(ctx, "SELECT balance, credit_limit, total_recharged FROM extension") == [
            (123456, 1, 123456)
        ]
