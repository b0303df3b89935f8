"""Shared fixtures: a migrated ledger on SQLite, and on PostgreSQL when
COOBILL_TEST_POSTGRES_URL is set (each test in a schema of its own, migrated once and
emptied for the next test), and a clock tests move."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from coobill.bootstrap import bootstrap
from coobill.config import Settings
from coobill.services.context import BillingContext
from coobill.services.ledger_seal import open_ledger
from coobill.services.settings import change_settings
from coobill.storage import schema
from coobill.storage.db import create_engine
from coobill.storage.uow import UnitOfWorkFactory

PG_URL = os.environ.get("COOBILL_TEST_POSTGRES_URL")
# The ledger key of the tests' daemons (two daemons on one ledger share theirs, as they must).
LEDGER_KEY = bytes(range(32))
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
# For a test of what only PostgreSQL can do (transactions of several writers interleaving):
# it runs on PostgreSQL alone, rather than being skipped on SQLite.
ON_POSTGRESQL_ONLY = pytest.mark.parametrize(
    "database_url", [b for b in BACKENDS if b == "postgresql"], indirect=True
)


class FakeClock:
    """A clock tests set and move; returns aware UTC instants like the real one."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2026, 11, 22, 14, 25, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def set_local(self, hhmm: str) -> None:
        hours, minutes = map(int, hhmm.split(":"))
        self.now = self.now.replace(hour=hours, minute=minutes, second=0)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--slow",
        action="store_true",
        default=False,
        help="property tests run ten times their examples",
    )


@pytest.fixture(autouse=True)
def root_log_handlers() -> Iterator[None]:
    """A test that runs `coobill run` in-process configures logging (logs.configure_logging
    replaces the root logger's handlers with one on the stderr pytest captured for that test):
    put the root logger back, or later tests log into a closed file ("--- Logging error ---")."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(autouse=True)
def state_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Where a PostgreSQL ledger's key file goes by default (as systemd's StateDirectory
    would say): the tests' own folder, never /var/lib/coobill."""
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path_factory.getbasetemp() / "state"))


@pytest.fixture(autouse=True)
def no_environment_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """The configuration `make run` writes into .venv is the developer's, not the tests'."""
    from coobill import config

    monkeypatch.setattr(config, "ENVIRONMENT_CONFIG", None)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating each time)."""
    import asyncio

    path = tmp_path_factory.mktemp("template") / "ledger.db"

    async def build() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        await schema.upgrade(engine)
        # Closing the last connection checkpoints the WAL into the file, so the file alone
        # is the whole database (a checkpoint cannot run inside BEGIN IMMEDIATE).
        await engine.dispose()

    asyncio.run(build())
    return path


async def make_pg_schema() -> tuple[str, str]:
    """A new empty schema on the test PostgreSQL; returns (url, schema name)."""
    assert PG_URL
    name = "t_" + uuid.uuid4().hex[:12]
    admin = create_async_engine(PG_URL)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{name}"'))
    await admin.dispose()
    return PG_URL, name


async def drop_pg_schema(name: str) -> None:
    admin = create_async_engine(PG_URL, poolclass=NullPool)  # type: ignore[arg-type]
    try:
        async with admin.begin() as conn:
            # A connection a test left open would make the drop wait for ever: fail instead.
            await conn.execute(text("SET LOCAL lock_timeout = '10s'"))
            await conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
    finally:
        await admin.dispose()


def pg_engine(url: str, schema_name: str):  # type: ignore[no-untyped-def]
    return create_engine(
        url, connect_args={"server_settings": {"search_path": schema_name}}, pool_size=5
    )


class MigratedSchemas:
    """Migrated PostgreSQL schemas, reused from test to test.

    Migrating a schema costs a quarter of a second; emptying one costs a few milliseconds. The
    first schema migrated is kept untouched as the pattern: a used schema is emptied (TRUNCATE
    … RESTART IDENTITY) and given back the rows and sequence values the migrations left in the
    pattern. A schema whose structure a test changed, or that a lingering connection still
    locks, is dropped instead of reused, so a test always starts on a freshly migrated ledger.
    """

    def __init__(self) -> None:
        self.pattern: str | None = None
        self.version: str | None = None
        self.tables: list[str] = []
        self.seeded: list[str] = []
        self.sequences: dict[str, int | None] = {}
        self.free: list[str] = []
        self.made: list[str] = []

    async def take(self) -> str:
        if self.pattern is None:
            self.pattern = await self._migrated()
            await self._read_pattern()
        if self.free:
            return self.free.pop()
        return await self._migrated()

    async def give_back(self, name: str) -> None:
        admin = create_async_engine(PG_URL, poolclass=NullPool)  # type: ignore[arg-type]
        try:
            async with admin.begin() as conn:
                await conn.execute(text("SET LOCAL lock_timeout = '2s'"))
                if await self._structure(conn, name) != (self.version, self.tables):
                    raise LookupError("a test changed the schema")
                await conn.execute(
                    text(
                        "TRUNCATE "
                        + ", ".join(
                            f'"{name}"."{t}"' for t in self.tables if t != "alembic_version"
                        )
                        + " RESTART IDENTITY CASCADE"
                    )
                )
                for table in self.seeded:
                    await conn.execute(
                        text(
                            f'INSERT INTO "{name}"."{table}" '
                            f'SELECT * FROM "{self.pattern}"."{table}"'
                        )
                    )
                for sequence, value in self.sequences.items():
                    if value is not None:
                        await conn.execute(
                            text("SELECT setval(:s, :v)"),
                            {"s": f'"{name}"."{sequence}"', "v": value},
                        )
            self.free.append(name)
        except (SQLAlchemyError, LookupError):
            # Not reusable: drop it if nothing holds it, else leave it to the end of the run.
            with contextlib.suppress(SQLAlchemyError):
                await drop_pg_schema(name)
                self.made.remove(name)
        finally:
            await admin.dispose()

    async def drop_all(self) -> None:
        for name in self.made:
            # A schema a stray connection still holds stays: each run makes schemas of its own.
            with contextlib.suppress(SQLAlchemyError):
                await drop_pg_schema(name)
        self.made.clear()

    async def _migrated(self) -> str:
        url, name = await make_pg_schema()
        self.made.append(name)
        engine = pg_engine(url, name)
        await schema.upgrade(engine)
        await engine.dispose()
        return name

    async def _read_pattern(self) -> None:
        admin = create_async_engine(PG_URL, poolclass=NullPool)  # type: ignore[arg-type]
        async with admin.begin() as conn:
            self.version, self.tables = await self._structure(conn, self.pattern)
            self.seeded = [
                t
                for t in self.tables
                if t != "alembic_version"
                and (
                    await conn.execute(
                        text(f'SELECT EXISTS (SELECT 1 FROM "{self.pattern}"."{t}")')
                    )
                ).scalar()
            ]
            rows = await conn.execute(
                text("SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = :s"),
                {"s": self.pattern},
            )
            self.sequences = dict(rows.tuples().all())
        await admin.dispose()

    @staticmethod
    async def _structure(conn, name):  # type: ignore[no-untyped-def]
        tables = sorted(
            (
                await conn.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = :s"), {"s": name}
                )
            ).scalars()
        )
        version = (
            await conn.execute(text(f'SELECT version_num FROM "{name}".alembic_version'))
        ).scalar()
        columns = (
            await conn.execute(
                text("SELECT count(*) FROM information_schema.columns WHERE table_schema = :s"),
                {"s": name},
            )
        ).scalar()
        return f"{version}/{columns}", tables


MIGRATED_SCHEMAS = MigratedSchemas()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if MIGRATED_SCHEMAS.made:
        import asyncio

        asyncio.run(MIGRATED_SCHEMAS.drop_all())


@pytest.fixture(params=BACKENDS)
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> AsyncIterator[tuple[str, str | None]]:
    """(url, postgres schema or None) of a migrated, empty ledger."""
    if request.param == "sqlite":
        path = tmp_path / "ledger.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}", None
    else:
        name = await MIGRATED_SCHEMAS.take()
        try:
            yield PG_URL, name  # type: ignore[misc]
        finally:
            await MIGRATED_SCHEMAS.give_back(name)


def settings_for(url: str, **sections: dict) -> Settings:  # type: ignore[type-arg]
    return Settings(database={"url": url}, **sections)


@pytest.fixture
async def ctx(
    database_url: tuple[str, str | None], clock: FakeClock
) -> AsyncIterator[BillingContext]:
    url, pg_schema = database_url
    engine = pg_engine(url, pg_schema) if pg_schema else create_engine(url)
    context = bootstrap(
        settings_for(url), uow=UnitOfWorkFactory(engine, ledger_key=LEDGER_KEY), clock=clock
    )
    await open_ledger(context)  # as the daemon and every command do first
    await change_settings(context, timezone="UTC")
    try:
        yield context
    finally:
        await context.uow.dispose()


@pytest.fixture
async def other_ctx(
    database_url: tuple[str, str | None], clock: FakeClock
) -> AsyncIterator[BillingContext]:
    """A second daemon's context on the same ledger: its own engine, pool and ledger thread."""
    url, pg_schema = database_url
    engine = pg_engine(url, pg_schema) if pg_schema else create_engine(url)
    context = bootstrap(
        settings_for(url), uow=UnitOfWorkFactory(engine, ledger_key=LEDGER_KEY), clock=clock
    )
    try:
        yield context
    finally:
        await context.uow.dispose()


@pytest.fixture
async def sqlite_ctx(sqlite_template: Path, tmp_path: Path, clock) -> AsyncIterator[BillingContext]:  # type: ignore[no-untyped-def]
    path = tmp_path / "ledger.db"
    shutil.copy(sqlite_template, path)
    context = bootstrap(Settings(database={"url": f"sqlite+aiosqlite:///{path}"}), clock=clock)
    await change_settings(context, timezone="UTC")
    yield context
    await context.uow.dispose()
