"""The unit of work: one transaction around the ledger.

    async with uow_factory() as uow:
        ...
        await uow.commit()

Leaving the block without commit() rolls back; nothing is ever committed in a finally.

The hot paths (authorizing and settling calls) are written as plain functions of a sync
Session and handed to `run()`, which commits when they return. On SQLite they run on one
dedicated thread with the stdlib driver — one thread hop per transaction instead of one per
statement, and the daemon's own writers queue there instead of on SQLite's busy lock. On
PostgreSQL they run through AsyncSession.run_sync on asyncpg. One code path, either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import TypeVar

from sqlalchemy import Engine, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")
log = logging.getLogger("coobill.ledger")


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


def _sync_sqlite_engine(engine: AsyncEngine) -> Engine | None:
    """A stdlib-driver engine on the same SQLite file, configured alike; None for :memory:."""
    from sqlalchemy import create_engine

    url = engine.url
    if not url.database or url.database == ":memory:":
        return None
    sync = create_engine(url.set(drivername="sqlite"), pool_size=1, max_overflow=0,
                         connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(sync, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(sync, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return sync


def _log_undo_failure(undone) -> None:  # type: ignore[no-untyped-def]
    # Nobody awaits an undo: a failure must at least reach the log (recovery finds the hold).
    if not undone.cancelled() and undone.exception() is not None:
        log.error("ledger.undo_failed error=%r", undone.exception())


class UnitOfWorkFactory:
    """Makes units of work on one engine; `dialect` tells services which SQL to use."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        self._sync_engine = _sync_sqlite_engine(engine) if self.dialect == "sqlite" else None
        self._sync_sessions = (
            sessionmaker(self._sync_engine, expire_on_commit=False, autoflush=False)
            if self._sync_engine is not None else None
        )
        self._thread: ThreadPoolExecutor | None = None

    def __call__(self) -> UnitOfWork:
        return UnitOfWork(self._sessions)

    async def run(
        self,
        work: Callable[[Session], T],
        *,
        undo: Callable[[Session, T], None] | None = None,
    ) -> T:
        """Run `work` in one transaction and commit it; an exception rolls it back.

        If the caller is cancelled while `work` is still running on the ledger thread, the
        thread finishes it anyway; `undo` then reverses what it committed (say, a hold for a
        call the gate could no longer tell about)."""
        if self._sync_sessions is None:
            async with self() as uow:
                result = await uow.session.run_sync(work)
                await uow.commit()
                return result
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger")
        future = self._thread.submit(self._run_sync, work)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            if undo is not None:
                future.add_done_callback(lambda done: self._undo_after(done, undo))
            raise

    def _run_sync(self, work: Callable[[Session], T]) -> T:
        assert self._sync_sessions is not None
        with self._sync_sessions() as session:
            result = work(session)
            session.commit()
            return result

    def _undo_after(self, done, undo) -> None:  # type: ignore[no-untyped-def]
        if done.cancelled() or done.exception() is not None or self._thread is None:
            return
        result = done.result()
        try:
            undone = self._thread.submit(self._run_sync, lambda session: undo(session, result))
        except RuntimeError:  # shutting down: recovery will find the hold
            log.warning("ledger.undo_skipped reason=shutdown")
            return
        undone.add_done_callback(_log_undo_failure)

    async def dispose(self) -> None:
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None
        if self._sync_engine is not None:
            self._sync_engine.dispose()
        await self.engine.dispose()
