"""The funded ledger every settlement property example starts from."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from coobill.bootstrap import bootstrap
from coobill.config import Settings
from coobill.services.settings import change_settings
from coobill.storage import schema
from coobill.storage.db import create_engine
from tests.faults.calls import billed
from tests.properties.pbx import EXTENSIONS

# `--slow` plays ten times the days: more than the suite's per-test timeout allows.
SLOW_TIMEOUT_SECONDS = 3600


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow"):
        for item in items:
            if "tests/properties/" in item.nodeid:
                item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_SECONDS))


@pytest.fixture(scope="session")
def funded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ledger (and its key) with 100-102 billed at 0.01 a second in UTC, not yet funded."""
    folder = tmp_path_factory.mktemp("funded")
    url = f"sqlite+aiosqlite:///{folder / 'ledger.db'}"

    async def build() -> None:
        engine = create_engine(url)
        await schema.upgrade(engine)
        await engine.dispose()
        ctx = bootstrap(Settings(database={"url": url}))
        try:
            await change_settings(ctx, timezone="UTC")
            await billed(ctx, dict.fromkeys(EXTENSIONS, "0"))
        finally:
            await ctx.uow.dispose()

    asyncio.run(build())
    return folder
