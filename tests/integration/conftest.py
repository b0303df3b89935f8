"""Fixtures of the integration tests: a SQLite ledger of their own, a fake Asterisk manager."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.ami_server import FakeAmiServer


@pytest.fixture
async def fake_ami() -> AsyncIterator[FakeAmiServer]:
    server = await FakeAmiServer(secret="lab-secret").start()
    yield server
    await server.close()
