"""Running the real `coobill` command in-process against a real ledger.

SQLite: a migrated file per test. PostgreSQL (when COOBILL_TEST_POSTGRES_URL is set): a role
and a schema of the same name per test, the role's search_path set to that schema, so the
command works in a schema of its own with nothing but COOBILL_DATABASE__URL.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from coobill import config
from coobill.bootstrap import bootstrap
from coobill.cli.main import main
from coobill.config import load_settings
from coobill.services.commands import AuthorizeCall, Verdict
from coobill.services.context import BillingContext
from coobill.services.gate import authorize_call
from coobill.storage.db import create_engine
from coobill.storage.tables import Base
from tests.conftest import BACKENDS, PG_URL


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


async def _admin(*statements: str) -> None:
    engine = create_async_engine(PG_URL)  # type: ignore[arg-type]
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture(params=BACKENDS)
def empty_ledger(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """COOBILL_DATABASE__URL set to an empty database; the configuration otherwise default."""
    for name in list(os.environ):
        if name.upper().startswith("COOBILL_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(config, "SYSTEM_CONFIG", tmp_path / "absent.toml")
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
        monkeypatch.setenv("COOBILL_DATABASE__URL", url)
        yield url
        return
    name = "cli_" + uuid.uuid4().hex[:12]
    asyncio.run(_admin(
        f'CREATE ROLE "{name}" LOGIN',
        f'CREATE SCHEMA "{name}" AUTHORIZATION "{name}"',
        # Only its own schema: not public, where other tables may lie about.
        f'ALTER ROLE "{name}" SET search_path = "{name}"',
    ))
    url = make_url(PG_URL).set(username=name).render_as_string(hide_password=False)  # type: ignore[arg-type]
    monkeypatch.setenv("COOBILL_DATABASE__URL", url)
    try:
        yield url
    finally:
        asyncio.run(_admin(f'DROP SCHEMA "{name}" CASCADE', f'DROP ROLE "{name}"'))


@pytest.fixture
def ledger(empty_ledger: str, sqlite_template: Path) -> str:
    """A migrated ledger (a copy of the migrated template on SQLite)."""
    if empty_ledger.startswith("sqlite"):
        shutil.copy(sqlite_template, empty_ledger.removeprefix("sqlite+aiosqlite:///"))
    else:
        assert main(["migrate"]) == 0
    return empty_ledger


@pytest.fixture
def coobill(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """coobill(*args) runs the command and returns its exit code, stdout and stderr."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


def snapshot(url: str) -> dict[str, list[tuple]]:  # type: ignore[type-arg]
    """Every row of every ledger table, to show a failed command changed nothing."""

    async def read() -> dict[str, list[tuple]]:  # type: ignore[type-arg]
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return {
                    name: [tuple(r) for r in (await conn.execute(
                        table.select().order_by(*table.primary_key.columns))).all()]
                    for name, table in Base.metadata.tables.items()
                }
        finally:
            await engine.dispose()

    return asyncio.run(read())


Coobill = Callable[..., Result]

RATE = ["--prefix", "00", "--length", "0", "--initial-cost", "0.1", "--initial-time", "60",
        "--rate", "0.05", "--period", "60", "--extensions", "*"]


def in_ledger(work: Callable[[BillingContext], Awaitable[Any]]) -> Any:
    """Run service code on the ledger the command line is configured for."""

    async def run() -> Any:
        ctx = bootstrap(load_settings())
        try:
            return await work(ctx)
        finally:
            await ctx.uow.dispose()

    return asyncio.run(run())


def ok(result: Result) -> Result:
    assert (result.code, result.err) == (0, ""), result
    return result


def authorized(uniqueid: str, extension: str = "100") -> Verdict:
    return in_ledger(
        lambda ctx: authorize_call(ctx, AuthorizeCall(uniqueid, extension, "0012345678"))
    )


@pytest.fixture
def seeded(ledger: str, coobill: Coobill) -> str:
    """Alice (100) and Bob (101), billed, recharged 10 each; one rate for every number."""
    ok(coobill("settings", "set", "--timezone", "UTC"))
    ok(coobill("extension", "set", "100", "--name", "Alice", "--billing", "--credit", "5"))
    ok(coobill("extension", "set", "101", "--name", "Bob", "--billing"))
    ok(coobill("extension", "recharge", "100", "101", "--amount", "10"))
    ok(coobill("rate", "add", *RATE, "--remark", "intl"))
    return ledger
