"""Migrations: an empty database goes to head and back to nothing, on SQLite and PostgreSQL,
and the schema they build is the one the models describe."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from coobill.errors import SchemaOutOfDate
from coobill.storage import schema
from coobill.storage.db import create_engine
from coobill.storage.tables import Base
from tests.conftest import BACKENDS, drop_pg_schema, make_pg_schema, pg_engine

TABLES = {"call", "extension", "ledger_entry", "ledger_head", "portal_user", "rate", "recharge",
          "reservation", "setting"}


@pytest.fixture(params=BACKENDS)
async def empty_engine(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AsyncEngine]:
    """An engine on a database with no tables at all."""
    if request.param == "sqlite":
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
        try:
            yield engine
        finally:
            await engine.dispose()
    else:
        url, name = await make_pg_schema()
        engine = pg_engine(url, name)
        try:
            yield engine
        finally:
            await engine.dispose()
            await drop_pg_schema(name)


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def differences(engine: AsyncEngine) -> list[object]:
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
        )


class TestMigrations:
    async def test_an_empty_database_upgrades_to_head(self, empty_engine: AsyncEngine) -> None:
        assert await schema.current_revision(empty_engine) is None
        await schema.upgrade(empty_engine)
        assert await schema.current_revision(empty_engine) == schema.head_revision()
        assert await table_names(empty_engine) == TABLES | {"alembic_version"}
        await schema.require_head(empty_engine)

    async def test_the_migrated_schema_is_the_one_the_models_describe(
        self, empty_engine: AsyncEngine
    ) -> None:
        await schema.upgrade(empty_engine)
        assert await differences(empty_engine) == []

    async def test_head_downgrades_to_nothing_and_upgrades_again(
        self, empty_engine: AsyncEngine
    ) -> None:
        await schema.upgrade(empty_engine)
        await schema.downgrade(empty_engine, "base")
        assert await schema.current_revision(empty_engine) is None
        assert await table_names(empty_engine) <= {"alembic_version"}
        await schema.upgrade(empty_engine)
        assert await schema.current_revision(empty_engine) == schema.head_revision()
        assert await differences(empty_engine) == []

    async def test_upgrading_a_database_at_head_changes_nothing(
        self, empty_engine: AsyncEngine
    ) -> None:
        await schema.upgrade(empty_engine)
        await schema.upgrade(empty_engine)
        assert await schema.current_revision(empty_engine) == schema.head_revision()


class TestSchemaCheck:
    async def test_the_daemon_refuses_an_empty_database(self, empty_engine: AsyncEngine) -> None:
        with pytest.raises(SchemaOutOfDate) as caught:
            await schema.require_head(empty_engine)
        assert "coobill migrate" in str(caught.value)

    async def test_the_daemon_refuses_a_database_downgraded_below_head(
        self, empty_engine: AsyncEngine
    ) -> None:
        await schema.upgrade(empty_engine)
        await schema.downgrade(empty_engine, "base")
        with pytest.raises(SchemaOutOfDate):
            await schema.require_head(empty_engine)
