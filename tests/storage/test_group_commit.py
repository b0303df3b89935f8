"""The SQLite ledger thread: units of work queued together share one transaction (group
commit), each in a savepoint of its own; a failing unit rolls back alone; nobody hears a
result before the commit that makes it true; a cancelled caller's committed unit is undone."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import closing
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert as insert_row
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from coobill.storage import schema
from coobill.storage.db import LEDGER_THREAD_BUSY_TIMEOUT_MS, create_engine
from coobill.storage.group_commit import LedgerThread, leave_the_loop
from coobill.storage.tables import Extension
from coobill.storage.uow import UnitOfWorkFactory


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[LedgerThread]:
    """The ledger thread of a UnitOfWorkFactory on a file SQLite ledger, as the daemon has it."""
    factory = UnitOfWorkFactory(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'l.db'}"))
    async with factory.engine.begin() as conn:
        await conn.exec_driver_sql("CREATE TABLE account (id INTEGER PRIMARY KEY)")
        await conn.exec_driver_sql("INSERT INTO account VALUES (1)")
        await conn.exec_driver_sql(
            "CREATE TABLE entry (ref TEXT UNIQUE, account INTEGER REFERENCES account(id))")
    assert factory.ledger_thread is not None
    yield factory.ledger_thread
    await factory.dispose()


def insert(ref: str, account: int = 1) -> Callable[[Session], str]:
    def work(session: Session) -> str:
        session.execute(text("INSERT INTO entry VALUES (:ref, :account)"),
                        {"ref": ref, "account": account})
        return ref
    return work


def refs(ledger: LedgerThread) -> list[str]:
    with ledger.sessions() as session:
        return list(session.execute(text("SELECT ref FROM entry ORDER BY rowid")).scalars())


class Gate:
    """A unit that keeps the ledger thread busy until released, so what is queued meanwhile
    is taken as one batch."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, session: Session) -> str:
        self.entered.set()
        assert self.release.wait(10)
        return "gate"


async def queued_behind_a_gate(ledger: LedgerThread, works: list[Callable[[Session], Any]],
                               ) -> list[asyncio.Future[Any]]:
    gate = Gate()
    first = ledger.submit(gate)
    await asyncio.to_thread(gate.entered.wait, 10)
    futures = [ledger.submit(work) for work in works]
    gate.release.set()
    await first
    return futures


class TestGroupCommit:
    async def test_units_queued_together_share_one_transaction_and_each_gets_its_result(
        self, ledger: LedgerThread
    ) -> None:
        futures = await queued_behind_a_gate(ledger, [insert(f"r{n}") for n in range(10)])
        assert await asyncio.gather(*futures) == [f"r{n}" for n in range(10)]
        # the gate alone, then the ten together
        assert (ledger.transactions, ledger.units) == (2, 11)
        assert refs(ledger) == [f"r{n}" for n in range(10)]

    async def test_a_failing_unit_rolls_back_alone(self, ledger: LedgerThread) -> None:
        def half_then_fail(session: Session) -> None:
            insert("half")(session)
            insert("r0")(session)  # a duplicate: IntegrityError after a write of its own

        futures = await queued_behind_a_gate(
            ledger, [insert("r0"), half_then_fail, insert("r1")])
        results = await asyncio.gather(*futures, return_exceptions=True)
        assert results[0] == "r0"
        assert results[2] == "r1"
        assert isinstance(results[1], IntegrityError)
        assert refs(ledger) == ["r0", "r1"]  # nothing of the failed unit, not even "half"
        assert ledger.transactions == 2

    async def test_a_later_unit_sees_what_an_earlier_one_wrote(self, ledger: LedgerThread) -> None:
        def count(session: Session) -> int:
            return int(session.execute(text("SELECT count(*) FROM entry")).scalar_one())

        futures = await queued_behind_a_gate(ledger, [insert("a"), count, insert("b"), count])
        assert await asyncio.gather(*futures) == ["a", 1, "b", 2]

    async def test_a_unit_reading_orm_objects_sees_what_an_earlier_unit_of_the_batch_wrote(
        self, tmp_path: Path
    ) -> None:
        """The batch shares one session: an object one unit loaded must not stand, stale,
        for the next (a recharge checks the ceiling against the balance it reads)."""
        factory = UnitOfWorkFactory(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'o.db'}"))
        try:
            await schema.upgrade(factory.engine)
            async with factory.engine.begin() as conn:
                await conn.execute(insert_row(Extension.__table__).values(
                    number="100", name="", created_at=datetime(2026, 11, 25)))
            assert factory.ledger_thread is not None

            kept: list[Extension] = []  # what a unit returns stays referenced, as records do

            def balance(session: Session) -> Decimal:
                ext = session.execute(select(Extension).where(Extension.number == "100")
                                      ).scalar_one()
                kept.append(ext)
                return ext.balance

            def credit(session: Session) -> None:  # a Core statement, as the repository's are
                session.connection().execute(update(Extension.__table__).values(
                    balance=Extension.__table__.c.balance + Decimal(5)))

            def orm_write_then_fail(session: Session) -> None:
                ext = session.execute(select(Extension)).scalar_one()
                ext.name = "half"
                session.flush()
                raise RuntimeError("refused after its write")

            futures = await queued_behind_a_gate(factory.ledger_thread, [
                balance, credit, balance, orm_write_then_fail, balance])
            results = await asyncio.gather(*futures, return_exceptions=True)
            assert results[0] == Decimal(0)
            assert results[2] == Decimal(5)
            assert isinstance(results[3], RuntimeError)
            assert results[4] == Decimal(5)
            assert factory.ledger_thread.transactions == 2  # the gate, then the five together
            async with factory() as uow:
                assert (await uow.session.execute(select(Extension.name))).scalar_one() == ""
        finally:
            await factory.dispose()

    async def test_when_the_commit_fails_each_unit_runs_again_alone(
        self, ledger: LedgerThread
    ) -> None:
        """A deferred foreign key fails only at COMMIT: the batch is lost whole, nobody was
        told anything, and each unit then gets the outcome it has on its own."""
        def dangling(session: Session) -> str:
            session.execute(text("PRAGMA defer_foreign_keys=ON"))
            return insert("dangling", account=99)(session)

        futures = await queued_behind_a_gate(ledger, [insert("r0"), dangling, insert("r1")])
        results = await asyncio.gather(*futures, return_exceptions=True)
        assert results[0] == "r0"
        assert results[2] == "r1"
        assert isinstance(results[1], IntegrityError)
        # The failed COMMITs left no transaction open (nor the write lock held): the ledger
        # thread and any other writer go on.
        assert await ledger.submit(insert("r2")) == "r2"
        path = ledger.sessions.kw["bind"].url.database
        with closing(sqlite3.connect(path, timeout=0, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")  # "database is locked" if it were still held
            other.execute("INSERT INTO entry VALUES ('other', 1)")
            other.execute("COMMIT")
        assert refs(ledger) == ["r0", "r1", "r2", "other"]

    async def test_nobody_hears_a_result_before_its_commit(self, ledger: LedgerThread) -> None:
        gate = Gate()
        first = ledger.submit(gate)
        await asyncio.to_thread(gate.entered.wait, 10)
        assert not first.done()  # it ran; its transaction has not committed yet
        gate.release.set()
        assert await first == "gate"

    async def test_a_unit_whose_caller_left_while_it_ran_is_undone(
        self, ledger: LedgerThread
    ) -> None:
        loop = asyncio.get_running_loop()
        undone: asyncio.Future[str] = loop.create_future()

        def undo(session: Session, result: str) -> None:
            session.execute(text("DELETE FROM entry WHERE ref = :ref"), {"ref": result})
            loop.call_soon_threadsafe(undone.set_result, result)

        gate = Gate()

        def left_while_running(session: Session) -> str:
            gate(session)  # waits until the test has cancelled its caller
            return insert("left")(session)

        running = ledger.submit(left_while_running, undo=undo)
        await asyncio.to_thread(gate.entered.wait, 10)
        running.cancel()
        gate.release.set()
        assert await asyncio.wait_for(undone, 10) == "left"
        assert refs(ledger) == []

    async def test_a_unit_cancelled_before_it_ran_never_runs(self, ledger: LedgerThread) -> None:
        gate = Gate()
        first = ledger.submit(gate)
        await asyncio.to_thread(gate.entered.wait, 10)
        never = ledger.submit(insert("never"))
        never.cancel()
        after = ledger.submit(insert("after"))
        gate.release.set()
        assert (await first, await after) == ("gate", "after")
        assert refs(ledger) == ["after"]


class TestShortUnitsOnTheLoop:
    """A short unit (the gate's) submitted while the thread is idle is run by the event loop
    itself, with the same rules: one transaction, a savepoint each, in order, nobody told
    before the commit; never waiting on another process's write lock, nor on opening the
    connection (its PRAGMAs wait out the busy timeout): the thread opens it."""

    @pytest.fixture
    async def ledger(self, ledger: LedgerThread) -> LedgerThread:
        """The ledger thread once it has run a unit, as in the daemon (it checks the ledger's
        seal at start): its connection is open; the counts start from zero."""
        def opened(session: Session) -> int:
            return session.execute(text("SELECT 1")).scalar_one()  # type: ignore[no-any-return]

        assert await ledger.submit(opened, short=True) == 1
        assert ledger.units_on_the_loop == 0  # the thread opened the connection
        ledger.transactions = ledger.units = 0
        return ledger

    async def test_a_short_unit_is_run_and_committed_by_the_loop_while_the_thread_is_idle(
        self, ledger: LedgerThread
    ) -> None:
        ran_on: list[threading.Thread] = []

        def work(session: Session) -> str:
            ran_on.append(threading.current_thread())
            return insert("a")(session)

        assert await ledger.submit(work, short=True) == "a"
        assert ran_on == [threading.current_thread()]  # the loop's own thread
        assert (ledger.units_on_the_loop, ledger.transactions) == (1, 1)
        assert refs(ledger) == ["a"]  # committed: another session reads it

    async def test_short_units_submitted_before_the_loop_runs_them_share_its_transaction(
        self, ledger: LedgerThread
    ) -> None:
        futures = [ledger.submit(insert(ref), short=True) for ref in ("a", "b", "a", "c")]
        results = await asyncio.gather(*futures, return_exceptions=True)
        assert [results[0], results[1], results[3]] == ["a", "b", "c"]
        assert isinstance(results[2], IntegrityError)  # the duplicate rolled back alone
        assert (ledger.units_on_the_loop, ledger.transactions) == (4, 1)
        assert refs(ledger) == ["a", "b", "c"]

    async def test_a_unit_that_is_not_short_takes_what_the_loop_was_to_run_to_the_thread(
        self, ledger: LedgerThread
    ) -> None:
        """The loop runs only short units; the order holds all the same."""
        ran_on: list[threading.Thread] = []

        def noted(ref: str) -> Callable[[Session], str]:
            def work(session: Session) -> str:
                ran_on.append(threading.current_thread())
                return insert(ref)(session)
            return work

        futures = [ledger.submit(noted("short"), short=True), ledger.submit(noted("long")),
                   ledger.submit(noted("short again"), short=True)]
        assert await asyncio.gather(*futures) == ["short", "long", "short again"]
        assert ledger.units_on_the_loop == 0
        assert threading.current_thread() not in ran_on
        assert refs(ledger) == ["short", "long", "short again"]

    async def test_a_unit_that_asks_to_leave_the_loop_is_run_by_the_thread_with_the_rest(
        self, ledger: LedgerThread
    ) -> None:
        """`leave_the_loop` (the gate's unit, when the rate book must be rebuilt): what the
        loop's transaction did is rolled back, and the thread runs every unit of it again."""
        ran_on: list[tuple[str, threading.Thread]] = []

        def rebuilding(session: Session) -> str:
            ran_on.append(("rebuilding", threading.current_thread()))
            leave_the_loop(session)
            return insert("rebuilt")(session)

        futures = [ledger.submit(insert("before"), short=True),
                   ledger.submit(rebuilding, short=True)]
        assert await asyncio.gather(*futures) == ["before", "rebuilt"]
        loop_thread = threading.current_thread()
        assert [name for name, thread in ran_on if thread is loop_thread] == ["rebuilding"]
        assert [name for name, thread in ran_on if thread is not loop_thread] == ["rebuilding"]
        assert ledger.units_on_the_loop == 0
        assert refs(ledger) == ["before", "rebuilt"]  # each once
        assert await ledger.submit(insert("next"), short=True) == "next"
        assert ledger.units_on_the_loop == 1

    async def test_a_short_unit_takes_its_turn_behind_what_the_thread_has_to_run(
        self, ledger: LedgerThread
    ) -> None:
        gate = Gate()
        first = ledger.submit(gate)
        await asyncio.to_thread(gate.entered.wait, 10)
        queued = ledger.submit(insert("queued"))
        short = ledger.submit(insert("short"), short=True)
        gate.release.set()
        assert (await first, await queued, await short) == ("gate", "queued", "short")
        assert ledger.units_on_the_loop == 0
        assert refs(ledger) == ["queued", "short"]

    async def test_while_another_process_writes_the_loop_does_not_wait_and_the_thread_does(
        self, ledger: LedgerThread, tmp_path: Path
    ) -> None:
        loop = asyncio.get_running_loop()
        with closing(sqlite3.connect(tmp_path / "l.db", isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")  # the CLI's or the portal's write, say
            future = ledger.submit(insert("later"), short=True)
            started = loop.time()
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(asyncio.shield(future), 0.3)
            # The loop ran its timer: it was not held in SQLite's busy handler (30 s).
            assert loop.time() - started < 2
            other.execute("ROLLBACK")
        assert await future == "later"  # the thread waited out the lock
        assert ledger.units_on_the_loop == 0
        with ledger.sessions() as session:  # the thread's connection waits as before
            assert session.execute(text("PRAGMA busy_timeout")).scalar_one() \
                == LEDGER_THREAD_BUSY_TIMEOUT_MS

    async def test_shutdown_runs_what_the_loop_had_yet_to_run(self, ledger: LedgerThread) -> None:
        future = ledger.submit(insert("last"), short=True)
        ledger.shutdown()
        assert await future == "last"
        assert refs(ledger) == ["last"]


class TestConfiguration:
    @pytest.mark.parametrize(("configured", "ledger_thread_waits"), [
        (1234, LEDGER_THREAD_BUSY_TIMEOUT_MS), (45_000, 45_000)])
    async def test_the_ledger_thread_is_configured_from_config_like_the_async_engine(
        self, tmp_path: Path, configured: int, ledger_thread_waits: int
    ) -> None:
        """One function configures both: WAL, foreign keys, the configured busy timeout; the
        ledger thread waits at least LEDGER_THREAD_BUSY_TIMEOUT_MS and never checkpoints."""
        factory = UnitOfWorkFactory(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'l.db'}",
                                                  busy_timeout_ms=configured))
        names = ("journal_mode", "synchronous", "foreign_keys", "busy_timeout",
                 "wal_autocheckpoint")
        try:
            def pragmas(session: Session) -> list[Any]:
                return [session.execute(text(f"PRAGMA {n}")).scalar_one() for n in names]

            on_the_thread = await factory.run(pragmas)
            # The loop begins its transactions without waiting, and then waits as before.
            on_the_loop = await factory.run(pragmas, short=True)
            assert factory.ledger_thread is not None
            assert factory.ledger_thread.units_on_the_loop == 1
            async with factory.engine.connect() as conn:
                on_the_engine = [(await conn.exec_driver_sql(f"PRAGMA {n}")).scalar()
                                 for n in names]
        finally:
            await factory.dispose()
        assert on_the_thread == on_the_loop == ["wal", 1, 1, ledger_thread_waits, 0]
        assert on_the_engine == ["wal", 1, 1, configured, 1000]


class TestCheckpoints:
    async def test_the_ledger_thread_leaves_wal_checkpoints_to_the_checkpointer(
        self, tmp_path: Path
    ) -> None:
        factory = UnitOfWorkFactory(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'l.db'}"))
        async with factory.engine.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE entry (ref TEXT UNIQUE, account INTEGER)")
        assert factory.ledger_thread is not None
        assert factory.checkpointer is not None
        try:
            def autocheckpoint(session: Session) -> int:
                return int(session.execute(text("PRAGMA wal_autocheckpoint")).scalar_one())

            assert await factory.run(autocheckpoint) == 0  # never inline, on a commit
            for n in range(98):  # one transaction each: 99 commits with the one above
                await factory.run(insert(f"r{n}"))
            assert factory.checkpointer.runs == 0
            await factory.run(insert("r98"))  # the 100th commit
            assert await asyncio.to_thread(factory.checkpointer.checkpointed.wait, 10)
            assert factory.checkpointer.runs == 1
        finally:
            await factory.dispose()


async def test_a_begin_refused_for_the_write_lock_is_sqlalchemys_error(
    ledger: LedgerThread,
) -> None:
    """The ledger thread's BEGIN IMMEDIATE runs on the driver's connection (storage/db.py):
    refused ("database is locked", another writer holding the lock past the busy timeout),
    it is raised as SQLAlchemy raises it, and the thread goes on once the lock is free."""
    def short_busy_timeout(session: Session) -> None:
        session.connection().connection.driver_connection.execute("PRAGMA busy_timeout=50")

    await ledger.submit(short_busy_timeout)  # the thread's one connection, from now on
    path = ledger.sessions.kw["bind"].url.database
    with closing(sqlite3.connect(path, timeout=0, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError, match="database is locked"):
            await ledger.submit(insert("refused"))
        other.execute("ROLLBACK")
    assert await ledger.submit(insert("after")) == "after"
    assert refs(ledger) == ["after"]
