"""Engines for the ledger: SQLite (the embedded default) and PostgreSQL (one ledger, many PBXs).

SQLite is opened in WAL mode with a busy timeout, and every writing transaction starts with
BEGIN IMMEDIATE, so two writers queue for the lock instead of failing half-way. Every SQLite
connection - the async engine's and the ledger thread's stdlib one (`ledger_thread_engine`) -
is configured by one function, `configure_sqlite`, from config.
"""

from __future__ import annotations

import contextlib
import logging
import os
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from coobill.storage._fast import raised_as_sqlalchemy_does

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
# The execution option of a ledger-thread transaction the event loop begins itself
# (storage/group_commit.py): BEGIN IMMEDIATE that fails at once, instead of waiting out the
# busy timeout, when another process holds the write lock.
NO_WAIT = "coobill_no_wait"


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
    with contextlib.suppress(FileExistsError):  # another process made it meanwhile: theirs stands
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


# The ledger thread (storage/group_commit.py) waits at least this long for another writer's
# lock. Its units are the gate's and settlement's: the gate already gives up by its own deadline
# (and undoes what commits after it), and a settlement that gave up at the busy timeout would
# only be retried, after a failed group commit unit by unit, each waiting again. So it waits out
# a CLI's or the portal's transaction rather than fail it (tests/faults/test_ledger_locked.py
# holds the lock 5 s, the configured timeout's default).
LEDGER_THREAD_BUSY_TIMEOUT_MS = 30_000


@dataclass(frozen=True, slots=True)
class SqliteOptions:
    """How a SQLite ledger's connections are configured: from config (`[database]
    busy_timeout_ms`), kept with the engine so the ledger thread's engine on the same file
    (`ledger_thread_engine`) is configured by the same function."""

    busy_timeout_ms: int
    memory: bool


# The options each SQLite engine was made with (an Engine has no place of its own for them).
_options: weakref.WeakKeyDictionary[Engine, SqliteOptions] = weakref.WeakKeyDictionary()


def configure_sqlite(dbapi_connection: Any, options: SqliteOptions, *, ledger_thread: bool) -> None:
    """The one place a SQLite connection is configured, for the async engine and the ledger
    thread's alike. WAL (readers never wait for the writer), synchronous=NORMAL (WAL's
    durable-enough default), foreign keys on, the busy timeout from config.

    The ledger thread's connection differs in two ways, for the reasons given where they are
    defined: a busy timeout of at least LEDGER_THREAD_BUSY_TIMEOUT_MS, and no automatic WAL
    checkpoints (`wal_autocheckpoint=0`): storage/checkpoint.py runs them on a thread of its
    own, so that a checkpoint's fsyncs never stall the calls being authorized and settled."""
    # Let SQLAlchemy's "begin" listener decide how transactions start.
    dbapi_connection.isolation_level = None
    busy = options.busy_timeout_ms
    if ledger_thread:
        busy = max(busy, LEDGER_THREAD_BUSY_TIMEOUT_MS)
    cursor = dbapi_connection.cursor()
    try:
        if not options.memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy)}")
        if ledger_thread:
            cursor.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's job
    finally:
        cursor.close()


def _begin_immediate_unless_read_only(engine: Engine, busy_timeout_ms: int | None = None) -> None:
    """`busy_timeout_ms`: the ledger thread's (its connection's own), restored after a BEGIN
    made with NO_WAIT."""

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A writer takes the write lock up front (no deadlock upgrading a read lock). A reader
        # (UnitOfWorkFactory.read) never takes it: in WAL mode it neither waits for the writer
        # nor makes the writer wait, so the portal's reads (a login's user, a session check)
        # cannot hold the gate's write behind SQLite's busy handler.
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        sql = "BEGIN" if read_only else "BEGIN IMMEDIATE"
        if conn.dialect.driver != "pysqlite":
            conn.exec_driver_sql(sql)
            return
        # The ledger thread (the stdlib driver): straight on its connection, as
        # storage/_fast.py runs the hot paths' statements - SQLAlchemy's execution of this one
        # statement was a fifth of an authorization's time there (0.15 of 0.65 ms, profiled).
        driver = conn.connection.driver_connection
        # NO_WAIT: only the BEGIN waits on another connection - once it holds the write lock,
        # a WAL transaction's reads and writes and its COMMIT take no lock another one holds.
        restore = busy_timeout_ms if conn.get_execution_options().get(NO_WAIT, False) else None
        if restore is not None:
            driver.execute("PRAGMA busy_timeout=0")
        try:
            with raised_as_sqlalchemy_does(conn.dialect, sql, ()):
                driver.execute(sql)
        finally:
            if restore is not None:
                driver.execute(f"PRAGMA busy_timeout={int(restore)}")


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
    options = SqliteOptions(busy_timeout_ms=busy_timeout_ms, memory=memory)
    engine = create_async_engine(url, connect_args={"timeout": busy_timeout_ms / 1000}, **kwargs)
    _options[engine.sync_engine] = options

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        configure_sqlite(dbapi_connection, options, ledger_thread=False)

    _begin_immediate_unless_read_only(engine.sync_engine)
    end_failed_commits(engine.sync_engine)
    return engine


def ledger_thread_engine(engine: AsyncEngine) -> Engine | None:
    """The stdlib-driver engine the SQLite ledger thread writes through: the same file as
    `engine`, configured by the same function; None for an in-memory ledger (which the async
    engine's single connection serves alone)."""
    url = engine.url
    if not url.database or url.database == ":memory:":
        return None
    # An engine made without create_engine (a test's): the configured defaults.
    options = _options.get(engine.sync_engine, SqliteOptions(busy_timeout_ms=5000, memory=False))
    sync = create_sync_engine(
        url.set(drivername="sqlite"),
        pool_size=1,
        max_overflow=0,
        connect_args={
            "check_same_thread": False,
            "timeout": max(options.busy_timeout_ms, LEDGER_THREAD_BUSY_TIMEOUT_MS) / 1000,
        },
    )

    @event.listens_for(sync, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        configure_sqlite(dbapi_connection, options, ledger_thread=True)

    _begin_immediate_unless_read_only(
        sync, max(options.busy_timeout_ms, LEDGER_THREAD_BUSY_TIMEOUT_MS))
    end_failed_commits(sync)
    return sync
