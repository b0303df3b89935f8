"""Attacks on the gate's compensation (issue 13, items 5 and 6): whatever an authorization the
gate gave up on committed is undone, on every database."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from sqlalchemy import text

from coobill.services.commands import AuthorizeCall
from coobill.services.context import BillingContext
from coobill.services.gate import authorize_call
from coobill.storage.group_commit import LedgerThread
from tests.services.conftest import make_extension, make_rate, rows


async def reserved(ctx: BillingContext, number: str = "100") -> Decimal:
    [(units,)] = await rows(ctx, "SELECT reserved FROM extension WHERE number = :n", n=number)
    return Decimal(int(units)) / 10000


class TestADeadlineThatComesWithTheResult:
    async def test_a_hold_committed_as_the_deadline_fires_is_undone(
        self, sqlite_ctx: BillingContext, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """SQLite: the ledger thread commits the hold and hands the result to the event loop
        (call_soon_threadsafe(_tell)); in that same turn of the loop the gate's deadline timer
        (asyncio.timeout_at in GateServer._ask) cancels the waiting task. `_tell` has already
        set the future's result, so LedgerThread never sees a cancelled future and never
        queues the undo, and UnitOfWorkFactory.run (SQLite branch: a bare `await
        ledger_thread.submit(...)`) has no `except CancelledError` as its PostgreSQL branch
        has. The gate tells the channel DENY error, the tracker is never told of the hold, and
        its funds stay held (later flagged: issue 6)."""
        ctx = sqlite_ctx  # the ledger thread's path (PostgreSQL's is the control below)
        await make_extension(ctx, "100", balance="10")
        await make_rate(ctx, "00")
        waiting: list[asyncio.Task[object]] = []
        tell = LedgerThread._tell

        def tell_then_deadline(self: LedgerThread, outcomes: list[object]) -> None:
            tell(self, outcomes)  # type: ignore[arg-type]
            for task in waiting:  # the deadline's timer, in the same turn of the loop
                task.cancel()

        monkeypatch.setattr(LedgerThread, "_tell", tell_then_deadline)
        task = asyncio.ensure_future(authorize_call(
            ctx, AuthorizeCall("c1", "100", "0012345678", channel="PJSIP/100-1")))
        waiting.append(task)
        with pytest.raises(asyncio.CancelledError):
            await task  # the gate would now tell the channel its on_error verdict
        waiting.clear()
        await ctx.uow.drain()  # an undo, if one was queued, has run
        holds = await rows(ctx, "SELECT state FROM reservation WHERE uniqueid = 'c1'")
        assert holds in ([], [("undone",)]), holds
        assert await reserved(ctx) == 0, (
            f"the channel was told DENY, yet its hold is {holds} and "
            f"{await reserved(ctx)} stays reserved")

    async def test_a_hold_committed_after_the_deadline_fired_is_undone(
        self, ctx: BillingContext, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The control (it holds): the deadline fires one turn of the loop before the result
        arrives; the future is cancelled and the late hold is undone, on both databases (on
        SQLite: the ledger thread's path, as when the thread has units queued)."""
        await make_extension(ctx, "100", balance="10")
        await make_rate(ctx, "00")
        waiting: list[asyncio.Task[object]] = []
        if ctx.uow.ledger_thread is not None:
            deliver = LedgerThread._deliver

            def deadline_then_deliver(self: LedgerThread, outcomes: list[object]) -> None:
                for task in waiting:
                    task.get_loop().call_soon_threadsafe(task.cancel)
                deliver(self, outcomes)  # type: ignore[arg-type]

            monkeypatch.setattr(LedgerThread, "_deliver", deadline_then_deliver)
            # As when the thread has units queued: the loop hands the gate's unit to it.
            monkeypatch.setattr(LedgerThread, "_run_here", LedgerThread._hand_to_the_thread)
        task = asyncio.ensure_future(authorize_call(
            ctx, AuthorizeCall("c1", "100", "0012345678", channel="PJSIP/100-1")))
        waiting.append(task)
        if ctx.uow.ledger_thread is None:
            for _ in range(3):
                await asyncio.sleep(0)
            task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        waiting.clear()
        await ctx.uow.drain()  # the abandoned transaction, then its undo, have run
        assert await reserved(ctx) == 0
        if ctx.uow.ledger_thread is not None:
            assert ctx.uow.ledger_thread.units_on_the_loop == 0  # the path meant

    async def test_a_deadline_before_the_loop_runs_the_gates_unit_leaves_no_hold(
        self, sqlite_ctx: BillingContext, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """SQLite, the thread idle: the event loop runs the gate's unit itself at its next
        turn (storage/group_commit.py) - unless the rate book is to be rebuilt, which the
        thread does. A deadline that fires before that turn cancels the waiting task; the
        unit is then never run, so no hold is taken at all - and the next authorization is
        run by the loop and holds as usual."""
        ctx = sqlite_ctx
        ledger = ctx.uow.ledger_thread
        assert ledger is not None
        await make_extension(ctx, "100", balance="10")
        await make_rate(ctx, "00")
        # The thread opens its connection, as at the daemon's start (its seal check).
        await ctx.uow.run(lambda session: session.execute(text("SELECT 1")).all())
        first = await authorize_call(
            ctx, AuthorizeCall("c0", "100", "0012345678", channel="PJSIP/100-0"))
        assert first.allowed
        assert ledger.units_on_the_loop == 0  # it built the rate book: on the thread
        held = await reserved(ctx)
        waiting: list[asyncio.Task[object]] = []
        run_here = LedgerThread._run_here

        def deadline_then_run(self: LedgerThread) -> None:
            for task in waiting:  # the deadline's timer, in the turn before
                task.cancel()
            run_here(self)

        monkeypatch.setattr(LedgerThread, "_run_here", deadline_then_run)
        task = asyncio.ensure_future(authorize_call(
            ctx, AuthorizeCall("c1", "100", "0012345678", channel="PJSIP/100-1")))
        waiting.append(task)
        with pytest.raises(asyncio.CancelledError):
            await task
        waiting.clear()
        await ctx.uow.drain()
        assert await rows(ctx, "SELECT state FROM reservation WHERE uniqueid = 'c1'") == []
        assert await reserved(ctx) == held
        verdict = await authorize_call(
            ctx, AuthorizeCall("c2", "100", "0012345678", channel="PJSIP/100-2"))
        assert verdict.allowed
        assert verdict.held is not None
        assert await reserved(ctx) == held + verdict.held
        assert ledger.units_on_the_loop == 1
