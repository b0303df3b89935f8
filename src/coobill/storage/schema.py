"""Migrations: upgrade to head, downgrade, and whether a database is at head."""

from __future__ import annotations

from collections.abc import Callable

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from coobill.errors import SchemaOutOfDate


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "coobill:migrations")
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


async def _with_connection(engine: AsyncEngine, fn: object) -> None:
    """Run a migration in one transaction. On SQLite, with foreign keys off while it runs: a
    batch migration rebuilds a table (copy, drop, rename), and the drop would fail on the rows
    that point at it. The keys are checked before the COMMIT instead (as Alembic's batch
    documentation advises); PRAGMA foreign_keys does nothing inside a transaction, so it is
    set around it."""
    async with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            await conn.run_sync(_foreign_keys, "OFF")
        try:
            async with conn.begin():
                await conn.run_sync(fn)  # type: ignore[arg-type]
                if sqlite:
                    await conn.run_sync(_no_dangling_keys)
        finally:
            if sqlite:
                await conn.run_sync(_foreign_keys, "ON")


def _foreign_keys(connection: Connection, state: str) -> None:
    cursor = connection.connection.cursor()  # the driver's own: no transaction begun
    cursor.execute(f"PRAGMA foreign_keys={state}")
    cursor.close()


def _no_dangling_keys(connection: Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"the migration left rows pointing nowhere: {broken[:5]}")


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade the database behind `engine` to `revision` (head by default)."""

    await _migrate(engine, command.upgrade, revision)


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    await _migrate(engine, command.downgrade, revision)


async def _migrate(engine: AsyncEngine, step: Callable[[Config, str], None], revision: str) -> None:
    def run(connection: Connection) -> None:
        cfg = alembic_config(str(engine.url))
        cfg.attributes["connection"] = connection
        step(cfg, revision)

    await _with_connection(engine, run)


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda c: MigrationContext.configure(c).get_current_revision()
        )


async def require_head(engine: AsyncEngine) -> None:
    """Raise SchemaOutOfDate unless the database is at the migrations' head."""
    current, head = await current_revision(engine), head_revision()
    if current != head:
        raise SchemaOutOfDate(
            f"database schema is at {current or 'nothing (empty database)'}, "
            f"the code needs {head}: run `coobill migrate`"
        )
