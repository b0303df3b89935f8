"""Engines for the ledger: SQLite (the embedded default) and PostgreSQL (one ledger, many PBXs).

SQLite is opened in WAL mode with a busy timeout, and every transaction starts with
BEGIN IMMEDIATE, so two writers queue for the lock instead of failing half-way.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

log = logging.getLogger("coobill.ledger")


def end_failed_commits(engine: Engine) -> None:
    """A COMMIT that fails (a full disk, say) leaves SQLite's transaction open, and SQLAlchemy,
    which counts the transaction as over, hands the connection back to the pool without a
    ROLLBACK: that connection would keep the database's write lock, and its next BEGIN would
    fail. So a connection coming back still inside a transaction is rolled back."""

    @event.listens_for(engine, "reset")
    def _on_reset(dbapi_connection: Any, _record: Any, _state: Any) -> None:
        driver = getattr(dbapi_connection, "driver_connection", dbapi_connection)
        if getattr(driver, "in_transaction", False):
            log.warning("ledger.rolled_back reason=transaction_left_open")
            dbapi_connection.rollback()


# The execution option of a read-only unit of work's connections.
READ_ONLY = "coobill_read_only"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_private_file(url: str) -> None:
    """Make a new SQLite ledger's file 0600 before SQLite does (it would follow the umask: 0644
    under `make run`). SQLite gives its -wal and -shm files the mode of the database file
    (os_unix.c, findCreateFileMode), so they are private too. An existing file is left as it is."""
    database = make_url(url).database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.exists() or not path.parent.is_dir():  # a missing folder: SQLite says so itself
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:  # another process made it meanwhile: theirs stands
        pass


def create_engine(url: str, *, busy_timeout_ms: int = 5000, **kwargs: Any) -> AsyncEngine:
    """Build an engine for `url`; nothing is built at import time."""
    if not is_sqlite(url):
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 10)
        kwargs.setdefault("pool_pre_ping", True)
        return create_async_engine(url, **kwargs)

    memory = ":memory:" in url or url.rstrip("/").endswith("sqlite+aiosqlite:")
    if memory:
        # One connection, or every session would see its own empty database.
        kwargs.setdefault("poolclass", StaticPool)
    else:
        create_private_file(url)
    engine = create_async_engine(url, connect_args={"timeout": busy_timeout_ms / 1000}, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" below decide how transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A writer takes the write lock up front (no deadlock upgrading a read lock). A reader
        # (UnitOfWorkFactory.read) never takes it: in WAL mode it neither waits for the writer
        # nor makes the writer wait, so the portal's reads (a login's user, a session check)
        # cannot hold the gate's write behind SQLite's busy handler.
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    end_failed_commits(engine.sync_engine)
    return engine
