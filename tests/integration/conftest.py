"""Fixtures of the integration tests: a SQLite ledger of their own, a fake Asterisk manager."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from coobill.bootstrap import bootstrap
from coobill.config import Settings
from coobill.services.context import BillingContext
from coobill.services.settings import change_settings
from tests.fakes.ami_server import FakeAmiServer


@pytest.fixture
async def sqlite_ctx(sqlite_template: Path, tmp_path: Path, clock) -> AsyncIterator[BillingContext]:  # type: ignore[no-untyped-def]
    path = tmp_path / "ledger.db"
    shutil.copy(sqlite_template, path)
    context = bootstrap(Settings(database={"url": f"sqlite+aiosqlite:///{path}"}), clock=clock)
    await change_settings(context, timezone="UTC")
    yield context
    await context.uow.dispose()


@pytest.fixture
async def fake_ami() -> AsyncIterator[FakeAmiServer]:
    server = await FakeAmiServer(secret="lab-secret").start()
    yield server
    await server.close()
