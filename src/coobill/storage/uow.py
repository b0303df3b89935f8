"""Units of work: one transaction around the ledger. Two kinds, one rule for which to use.

Everything that moves money or a hold - authorizing and settling calls, closing a hold, a
recharge, an adjustment, opening the ledger - is a plain function of a sync Session, run by
`await uow_factory.run(work)`, which commits when it returns; its statements are the ledger
repository's (storage/ledger_repo/). How it runs differs by database, what it means does not:

- SQLite: on one dedicated thread with the stdlib driver (storage/group_commit.py), several
  units to a transaction when several are queued (group commit), each in a savepoint; the
  daemon's writers queue there instead of on SQLite's busy lock. Its connection is configured
  by storage/db.py's `configure_sqlite`, as the async engine's are.
- PostgreSQL (and in-memory SQLite): through AsyncSession.run_sync on the async driver, in a
  task of its own.

On either, a caller that stops waiting (the gate's deadline) never cuts a transaction off
half-way, and its `undo` then reverses what the work committed.

The ORM unit of work, on the async driver, is for the rest:

    async with uow_factory() as uow:      # or uow_factory.read() for reads alone
        ...
        await uow.commit()

Leaving the block without commit() rolls back; nothing is ever committed in a finally. It
writes the catalogue - extensions' details, rates, users, settings, portal sessions - never a
balance, a hold, a call record or a ledger entry.

Every session carries the ledger key in `session.info[LEDGER_KEY]` (services/ledger.py seals
entries with it).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from functools import partial
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, sessionmaker

from coobill.storage.checkpoint import WalCheckpointer
from coobill.storage.db import READ_ONLY, ledger_thread_engine
from coobill.storage.group_commit import LedgerThread

log = logging.getLogger("coobill.ledger")

T = TypeVar("T")

LEDGER_KEY = "coobill.ledger_key"


class UnitOfWork:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self.session: AsyncSession
        self.committed = False

    async def __aenter__(self) -> UnitOfWork:
        self.session = self._sessions()
        self.committed = False
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # close() rolls back whatever was not committed, and leaves what was loaded readable
        # (rollback() would expire it).
        await self.session.close()

    async def commit(self) -> None:
        await self.session.commit()
        self.committed = True

    async def rollback(self) -> None:
        await self.session.rollback()


class UnitOfWorkFactory:
    """Makes units of work on one engine; `dialect` tells services which SQL to use."""

    def __init__(self, engine: AsyncEngine, *, ledger_key: bytes | None = None) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        # No key given (a test's ledger, an in-memory one): a key of this factory's own.
        self.ledger_key = ledger_key if ledger_key is not None else secrets.token_bytes(32)
        info = {LEDGER_KEY: self.ledger_key}
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False,
                                            info=info)
        self._readers = async_sessionmaker(engine.execution_options(**{READ_ONLY: True}),
                                           expire_on_commit=False, autoflush=False, info=info)
        self._sync_engine = ledger_thread_engine(engine) if self.dialect == "sqlite" else None
        self._sync_sessions = (
            sessionmaker(self._sync_engine, expire_on_commit=False, autoflush=False, info=info)
            if self._sync_engine is not None else None
        )
        self._in_flight: set[asyncio.Task[Any]] = set()
        # SQLite's ledger thread (None on PostgreSQL and in-memory SQLite), and the WAL
        # checkpoints it leaves to a thread of their own.
        self.ledger_thread: LedgerThread | None = None
        self.checkpointer: WalCheckpointer | None = None
        if self._sync_sessions is not None:
            self.checkpointer = WalCheckpointer(str(engine.url.database))
            self.ledger_thread = LedgerThread(self._sync_sessions,
                                              after_commit=self.checkpointer.nudge)

    def __call__(self) -> UnitOfWork:
        return UnitOfWork(self._sessions)

    def read(self) -> UnitOfWork:
        """A unit of work that only reads: on SQLite it never takes the write lock (its
        BEGIN is deferred; storage/db.py), so it cannot delay a writer such as the gate.
        Writing in it is a mistake (SQLite may refuse the upgrade with "database is
        locked")."""
        return UnitOfWork(self._readers)

    async def run(
        self,
        work: Callable[[Session], T],
        *,
        undo: Callable[[Session, T], None] | None = None,
        short: bool = False,
    ) -> T:
        """Run `work` in a transaction and commit it; an exception rolls it back.

        On SQLite the ledger thread may run it in one transaction with other units of work
        (group commit, storage/group_commit.py), each in a savepoint of its own; the result
        comes back only once that transaction has committed. If the caller is cancelled
        while `work` is still queued it never runs; if it already ran, `undo` then reverses
        what it committed (say, a hold for a call the gate could no longer tell about).
        `short`: a unit of a few statements, which on SQLite the event loop may run itself
        while the ledger thread is idle (the gate's; storage/group_commit.py)."""
        if self.ledger_thread is not None:
            future = self.ledger_thread.submit(work, undo, short=short)
            try:
                return await future  # type: ignore[no-any-return]
            except asyncio.CancelledError:
                # The result came as the caller was being cancelled: the future was done, so
                # the ledger thread saw nobody give up, and nobody will use what it did.
                if undo is not None and future.done() and not future.cancelled() \
                        and future.exception() is None:
                    self.ledger_thread.undo(undo, future.result())
                raise
        task = asyncio.ensure_future(self._transaction(work))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if undo is not None:
                task.add_done_callback(partial(self._undo_after, undo))
            raise

    async def _transaction(self, work: Callable[[Session], T]) -> T:
        async with self() as uow:
            result = await uow.session.run_sync(work)
            await uow.commit()
            return result

    def _undo_after(self, undo: Callable[[Session, Any], None], done: asyncio.Task[Any]) -> None:
        """The caller gave up while `work` ran: once it has committed, reverse it."""
        if done.cancelled():
            return  # nothing was committed
        if (error := done.exception()) is not None:
            log.warning("ledger.late_work_failed error=%r", error)  # nor was anything
            return
        result = done.result()
        task = asyncio.ensure_future(self._transaction(lambda session: undo(session, result)))
        self._in_flight.add(task)
        task.add_done_callback(self._undo_done)

    def _undo_done(self, task: asyncio.Task[Any]) -> None:
        self._in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("ledger.undo_failed error=%r", task.exception())

    async def drain(self) -> None:
        """Wait until the transactions a caller stopped waiting for, and their undos, are done
        (on SQLite: everything queued on the ledger thread so far has run)."""
        while self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        if self.ledger_thread is not None:
            await self.ledger_thread.submit(lambda session: None)
            await self.ledger_thread.submit(lambda session: None)  # and an undo queued by it

    async def dispose(self) -> None:
        # Transactions (and undos) a caller stopped waiting for still finish.
        while self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        if self.ledger_thread is not None:
            self.ledger_thread.shutdown()
        if self.checkpointer is not None:
            self.checkpointer.close()
        if self._sync_engine is not None:
            self._sync_engine.dispose()
        await self.engine.dispose()
