"""The ledger is locked by another writer for 5 s: the gate still answers within its deadline
(DENY error, or ALLOW unlimited where agi.on_error = allow), a hold its authorization commits
after the gate gave up is undone, and the settlements in flight wait and complete once the
lock is released. Nothing is lost; the audit passes."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from functools import partial

from sqlalchemy import text

from coobill.agi.server import GateOptions, GateServer
from coobill.services import holds, reservations
from coobill.services.context import BillingContext
from coobill.services.gate import authorize_call
from coobill.services.reports import list_calls
from tests.conftest import pg_engine
from tests.fakes.ami_server import FakeAmiServer
from tests.faults.calls import Call, billed
from tests.faults.ledger_checks import assert_debited_once, holds_left

# One extension per daemon for the calls asked while the ledger is locked (102 for the
# strict daemon, 103 for the lenient one): neither daemon's late authorization waits on the
# other's row, so what the ledger shows afterwards does not depend on their order.
BALANCES = {"100": "50", "101": "50", "102": "50", "103": "50"}
LOCKED_FOR = 5.0
DEADLINE = 5.0  # GateOptions' default: authorize gets 80% of it


@asynccontextmanager
async def ledger_locked(
    database_url: tuple[str, str | None], release: asyncio.Future[None]
) -> AsyncIterator[None]:
    """Another writer holds the ledger's write lock until `release` is resolved: BEGIN
    EXCLUSIVE on SQLite, LOCK TABLE … IN EXCLUSIVE MODE on PostgreSQL (reads still go on)."""
    url, pg_schema = database_url
    if pg_schema is None:
        path = url.split("///", 1)[1]
        locked = threading.Event()
        let_go = threading.Event()

        def hold() -> None:
            with closing(sqlite3.connect(path, isolation_level=None)) as db:
                db.execute("BEGIN EXCLUSIVE")
                locked.set()
                let_go.wait()
                db.execute("ROLLBACK")

        holder = asyncio.get_running_loop().run_in_executor(None, hold)
        await asyncio.get_running_loop().run_in_executor(None, locked.wait)
        try:
            yield
            await release
        finally:
            let_go.set()
            await holder
        return
    engine = pg_engine(url, pg_schema)
    try:
        async with engine.connect() as conn:
            await conn.execute(text(
                "LOCK TABLE extension, reservation, call, ledger_entry IN EXCLUSIVE MODE"))
            try:
                yield
                await release
            finally:
                await conn.rollback()
    finally:
        await engine.dispose()


class TestTheLedgerLockedForFiveSeconds:
    async def test_the_gate_answers_in_time_and_settlements_complete_after_the_lock(
        self, ctx: BillingContext, other_ctx: BillingContext, database_url: tuple[str, str | None],
        fake_ami: FakeAmiServer, run_daemon,  # type: ignore[no-untyped-def]
    ) -> None:
        """`denied` asks the daemon's gate (on_error deny) and `let_through` a second daemon's
        (on_error allow) while the lock is held; once both are answered, `ending` and `ended`
        hang up, their settlements waiting behind the lock."""
        await billed(ctx, BALANCES)
        daemon = await run_daemon()
        lenient = GateServer(partial(authorize_call, other_ctx),
                             GateOptions(port=0, deadline_seconds=DEADLINE, on_error="allow"))
        await lenient.start()
        ending, ended = Call(0, "100", 7), Call(1, "101", 13)
        denied, let_through, after = Call(2, "102", 5), Call(3, "103", 8), Call(4, "100", 3)
        for call in (ending, ended):
            assert (await call.ask_gate(daemon.gate.port))["COOBILL_RESULT"] == "ALLOW"
            await fake_ami.send_events(call.begin())

        loop = asyncio.get_running_loop()
        release: asyncio.Future[None] = loop.create_future()
        try:
            async with ledger_locked(database_url, release):
                locked_at = loop.time()
                loop.call_at(locked_at + LOCKED_FOR, release.set_result, None)
                verdicts = await asyncio.gather(denied.ask_gate(daemon.gate.port),
                                                let_through.ask_gate(lenient.port))
                answered_in = loop.time() - locked_at
                assert not release.done()  # answered while the ledger was still locked
                await fake_ami.send_events(ending.end() + ended.end())
                await release
                assert daemon.events.settled.count == 0  # still waiting: the lock goes only now
        finally:
            await lenient.close()
        assert answered_in < DEADLINE
        assert verdicts[0] == {"COOBILL_RESULT": "DENY", "COOBILL_REASON": "error",
                               "COOBILL_LIMIT": "", "COOBILL_DIAL_OPTIONS": ""}
        assert verdicts[1] == {"COOBILL_RESULT": "ALLOW", "COOBILL_REASON": "error",
                               "COOBILL_LIMIT": "", "COOBILL_DIAL_OPTIONS": ""}

        await daemon.events.settled.reached(2)
        # Both authorizations were waiting on the lock when the gate gave up; once it goes
        # each commits and is undone, or never commits (on SQLite an authorization still
        # queued for the ledger thread when the gate gives up never runs: uow.run). Either
        # way the ledger shows it: no hold of theirs is held, one that exists is undone, and
        # neither is charged (assert_debited_once below).
        await ctx.uow.drain()
        await other_ctx.uow.drain()
        closed = {h.uniqueid: h.state for state in holds.CLOSED
                  for h in await reservations.list_held(ctx, state=state)}
        assert closed.get(denied.uniqueid, holds.UNDONE) == holds.UNDONE
        assert closed.get(let_through.uniqueid, holds.UNDONE) == holds.UNDONE
        assert await holds_left(ctx) == []
        # The call let through unlimited talks and is billed at its rate when it ends; the
        # gate works again for the next call.
        await fake_ami.send_events(let_through.begin() + let_through.end())
        verdict = await after.ask_gate(daemon.gate.port)
        assert (verdict["COOBILL_RESULT"], verdict["COOBILL_LIMIT"]) == ("ALLOW", "600")
        await fake_ami.send_events(after.begin() + after.end())
        await daemon.events.settled.reached(4)
        await daemon.stop()
        calls = {c.uniqueid: c for c in (await list_calls(ctx))[0]}
        assert not calls[let_through.uniqueid].gated
        await assert_debited_once(ctx, [ending, ended, let_through, after], BALANCES)
