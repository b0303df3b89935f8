"""The ledger and its audit: every balance change is an entry; the audit finds any tampering."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from functools import partial

from sqlalchemy import text
from sqlalchemy.orm import Session

from coobill.services import balances, extensions, ledger, reservations
from coobill.services.audit import audit
from coobill.services.context import BillingContext
from coobill.services.extensions import ExtensionChanges
from coobill.storage.uow import UnitOfWorkFactory
from tests.services.conftest import authorize, ended, make_extension, make_rate, rows, settle

# The debit of call c3's record (debits refer to the record, not the uniqueid).
DEBIT_OF_C3 = "(SELECT 'call:' || CAST(id AS VARCHAR(20)) FROM call WHERE uniqueid = 'c3')"


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
    await balances.recharge(ctx, ["100", "101"], "1.0001")
    await authorize(ctx, "c2", "101")
    await settle(ctx, ended("c2", extension="101", billsec=0))  # unanswered: no entry
    await balances.adjust(ctx, "101", "-0.3333", note="typo")
    await extensions.set_extension(ctx, "100", ExtensionChanges(payment="postpaid"))
    await authorize(ctx, "c3", "101")
    await settle(ctx, ended("c3", extension="101", billsec=7))
    await settle(ctx, ended("c3", extension="101", billsec=7))  # AMI repeated itself
    await authorize(ctx, "c4", "100")  # still live: holds, but is not in the ledger
    await authorize(ctx, "c5", "101")
    # Their channels went while AMI was away: flagged, then resolved by a billing user.
    await reservations.reconcile(ctx, set(), asked_at=datetime(2100, 1, 1))
    await reservations.charge(ctx, "c4", 61)
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
        assert settlement is not None
        assert settlement.cost == Decimal("1.0306")
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
        assert report.ok
        assert report.extensions == report.entries == 0

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
        await execute(ctx, f"DELETE FROM ledger_entry WHERE reference = {DEBIT_OF_C3}")
        problems = (await audit(ctx)).problems
        assert any(p.startswith("call c3 (record ") and "not debited once" in p
                   for p in problems)

    async def test_a_call_cost_changed_after_settlement_is_reported(
        self, ctx: BillingContext
    ) -> None:
        await mixed_series(ctx)
        await execute(ctx, "UPDATE call SET cost = cost + 1 WHERE uniqueid = 'c1'")
        assert any(p.startswith("call c1 (record ") for p in (await audit(ctx)).problems)

    async def test_a_hold_reopened_after_its_call_was_settled_is_reported(
        self, ctx: BillingContext
    ) -> None:
        await mixed_series(ctx)
        await execute(ctx, "UPDATE reservation SET state = 'held' WHERE uniqueid = 'c1'")
        problems = (await audit(ctx)).problems
        assert "1 holds belong to calls already settled" in problems
        assert any(p.startswith("extension 100: reserved ") for p in problems)


class TestTamperEvidence:
    """A rewrite of the database alone - without the ledger key, which lives outside it - is
    found, and the audit names the first entry that is wrong."""

    async def test_a_recharge_raised_with_its_balance_is_found(self, ctx: BillingContext) -> None:
        """The amount, the balance after and the balance all raised together: the sums agree,
        the seal does not."""
        await mixed_series(ctx)
        [(entry_id,)] = await rows(
            ctx, "SELECT min(id) FROM ledger_entry WHERE kind = 'recharge' AND extension_id = "
            "(SELECT id FROM extension WHERE number = '101')")
        await execute(ctx, "UPDATE ledger_entry SET amount = amount + 1000000 WHERE id = :e",
                      e=entry_id)
        await execute(ctx, "UPDATE ledger_entry SET balance_after = balance_after + 1000000 "
                      "WHERE extension_id = (SELECT id FROM extension WHERE number = '101') "
                      "AND id >= :e", e=entry_id)
        await execute(ctx, "UPDATE recharge SET amount = amount + 1000000, balance_after = "
                      "balance_after + 1000000 WHERE 'recharge:' || CAST(id AS VARCHAR(20)) = "
                      "(SELECT reference FROM ledger_entry WHERE id = :e)", e=entry_id)
        await execute(ctx, "UPDATE extension SET balance = balance + 1000000 WHERE number = '101'")
        problems = (await audit(ctx)).problems
        assert problems[0] == (f"ledger entry {entry_id}: its seal does not match: it was "
                               "changed, or an entry just before it was removed or added")
        assert not any(p.startswith("extension ") for p in problems)  # the sums agree

    async def test_a_call_deleted_with_its_debit_and_the_balance_reset_is_found(
        self, ctx: BillingContext
    ) -> None:
        await mixed_series(ctx)
        [(debit_id, amount)] = await rows(
            ctx, f"SELECT id, amount FROM ledger_entry WHERE reference = {DEBIT_OF_C3}")
        await execute(ctx, f"DELETE FROM ledger_entry WHERE reference = {DEBIT_OF_C3}")
        await execute(ctx, "DELETE FROM call WHERE uniqueid = 'c3'")
        await execute(ctx, "UPDATE ledger_entry SET balance_after = balance_after - :a "
                      "WHERE id > :d AND extension_id = (SELECT id FROM extension WHERE "
                      "number = '101')", a=amount, d=debit_id)
        await execute(ctx, "UPDATE extension SET balance = balance - :a WHERE number = '101'",
                      a=amount)
        problems = (await audit(ctx)).problems
        assert problems
        assert all(p.startswith(("ledger entry ", "ledger head")) for p in problems)
        [(following,)] = await rows(ctx, "SELECT min(id) FROM ledger_entry WHERE id > :d",
                                    d=debit_id)
        assert problems[0].startswith(f"ledger entry {following}: its seal does not match")

    async def test_the_last_entries_cut_off_are_found(self, ctx: BillingContext) -> None:
        await mixed_series(ctx)
        [(last_id, ext_id, amount)] = await rows(
            ctx, "SELECT id, extension_id, amount FROM ledger_entry ORDER BY id DESC LIMIT 1")
        await execute(ctx, "DELETE FROM ledger_entry WHERE id = :i", i=last_id)
        await execute(ctx, "UPDATE extension SET balance = balance - :a WHERE id = :e",
                      a=amount, e=ext_id)
        await execute(ctx, "DELETE FROM call WHERE id = (SELECT max(id) FROM call)")
        problems = (await audit(ctx)).problems
        assert any(p.startswith("ledger head: it ends at entry ") for p in problems)

    async def test_an_entry_added_without_the_key_is_found(self, ctx: BillingContext) -> None:
        await mixed_series(ctx)
        await execute(
            ctx, "INSERT INTO ledger_entry (extension_id, kind, amount, balance_after, reference, "
            "who, created_at, mac) SELECT id, 'adjustment', 50000, balance + 50000, NULL, 'x', "
            "'2026-11-22 15:00:00', 'forged' FROM extension WHERE number = '100'")
        await execute(ctx, "UPDATE extension SET balance = balance + 50000 WHERE number = '100'")
        problems = (await audit(ctx)).problems
        assert any(p.endswith("removed or added") and p.startswith("ledger entry ")
                   for p in problems)

    async def test_another_key_sees_every_entry_as_forged(self, ctx: BillingContext) -> None:
        await mixed_series(ctx)
        stranger = replace(ctx, uow=UnitOfWorkFactory(ctx.uow.engine, ledger_key=b"x" * 32))
        problems = (await audit(stranger)).problems
        assert problems[0].startswith("ledger entry 1: its seal does not match")

    async def test_money_is_stored_as_integer_ten_thousandths(self, ctx: BillingContext) -> None:
        await make_extension(ctx, "100", balance="12.3456", credit="0.0001")
        assert await rows(ctx, "SELECT balance, credit_limit, total_recharged FROM extension") == [
            (123456, 1, 123456)
        ]


class TestTheChainInOneTransaction:
    async def test_entries_of_one_batch_chain_on_through_a_unit_rolled_back(
        self, sqlite_ctx: BillingContext
    ) -> None:
        """SQLite's ledger thread runs the units queued together in one transaction, and reads
        the chain's head once in it: an entry that a failing unit wrote, and the head it moved,
        roll back with it, and the next unit's entry follows the one before."""
        from tests.storage.test_group_commit import queued_behind_a_gate

        ctx = sqlite_ctx
        await make_extension(ctx, "100", balance="10")
        ext_id = (await rows(ctx, "SELECT id FROM extension WHERE number = '100'"))[0][0]
        ledger_thread = ctx.uow.ledger_thread
        assert ledger_thread is not None

        def debit(session: Session, amount: str, fail: bool = False) -> Decimal:
            posted = ledger.post_entry(session, extension_id=ext_id, kind=ledger.ADJUSTMENT,
                                       amount=Decimal(amount), at=datetime(2026, 12, 7, 12))
            if fail:
                raise RuntimeError("after its entry")
            return posted.after

        transactions = ledger_thread.transactions
        futures = await queued_behind_a_gate(ledger_thread, [
            partial(debit, amount="-1"), partial(debit, amount="-2", fail=True),
            partial(debit, amount="-3")])
        results = await asyncio.gather(*futures, return_exceptions=True)
        assert results[0] == Decimal("9")
        assert results[2] == Decimal("6")
        assert isinstance(results[1], RuntimeError)
        assert ledger_thread.transactions == transactions + 2  # the gate, then the three
        report = await audit(ctx)
        assert report.problems == []
        assert report.entries == 3  # the first balance's, the first unit's and the third's
        assert await rows(ctx, "SELECT entries FROM ledger_head") == [(3,)]
