"""Attacks on migration 0004 with a ledger as issue 13's bugs left it: the upgrade must not
refuse the very ledgers it is meant to repair, nor bill their calls again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from coobill.storage import schema
from coobill.storage.db import create_engine
from tests.conftest import BACKENDS, drop_pg_schema, make_pg_schema, pg_engine


@pytest.fixture(params=BACKENDS)
async def engine_at_0003(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
        name = None
    else:
        url, name = await make_pg_schema()
        engine = pg_engine(url, name)
    try:
        await schema.upgrade(engine, "0003")
        yield engine
    finally:
        await engine.dispose()
        if name is not None:
            await drop_pg_schema(name)


async def run(engine: AsyncEngine, *sql: str) -> None:
    async with engine.begin() as conn:
        for statement in sql:
            await conn.execute(text(statement))


class TestALedgerHitByTheReleaseRace:
    async def test_negative_reserved_funds_are_repaired_not_refused(
        self, engine_at_0003: AsyncEngine
    ) -> None:
        """Issue 13, item 4: the release race left `reserved = -27.1500` (and no hold). 0004
        adds CHECK (reserved >= 0) without first setting reserved to the sum of the open holds,
        so the upgrade of exactly that ledger fails (PostgreSQL validates the new constraint;
        SQLite's batch copy violates it) and the daemon refuses to start (require_head)."""
        await run(
            engine_at_0003,
            "INSERT INTO extension (id, number, name, billing_enabled, payment, "
            "credit_limit, balance, total_recharged, reserved, locked, created_at) VALUES "
            "(1, '100', '', true, 'prepaid', 0, 100000, 100000, -271500, false, "
            "'2026-11-01 00:00:00')",
        )
        try:
            await schema.upgrade(engine_at_0003)
        except Exception as exc:  # noqa: BLE001 - whatever the driver raises
            pytest.fail(
                f"the upgrade refused the ledger: {type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:160]}"
            )
        async with engine_at_0003.connect() as conn:
            reserved = (await conn.execute(text("SELECT reserved FROM extension"))).scalar_one()
        assert reserved == 0
