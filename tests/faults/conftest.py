"""Fixtures for the fault tests: a fake Asterisk manager, a daemon run in-process on the test's
ledger, a second daemon's context on the same ledger, and log lines to wait for."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from coobill.config import Settings
from coobill.daemon import Daemon
from coobill.services.context import BillingContext
from tests.fakes.ami_server import FakeAmiServer, Frame

WAIT = 20.0  # the longest any fault test waits for one thing to happen


class LogWatch(logging.Handler):
    """Collects coobill's log lines (from any thread) and lets a test await one."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(logging.INFO)
        self.loop = loop
        self.lines: list[str] = []
        self._waiters: list[tuple[str, asyncio.Future[str]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        self.loop.call_soon_threadsafe(self._seen, line)

    def _seen(self, line: str) -> None:
        self.lines.append(line)
        for fragment, waiter in list(self._waiters):
            if fragment in line and not waiter.done():
                waiter.set_result(line)
                self._waiters.remove((fragment, waiter))

    async def line(self, fragment: str, *, timeout: float = WAIT) -> str:
        """The first line containing `fragment` (already logged, or the next one)."""
        for line in self.lines:
            if fragment in line:
                return line
        waiter: asyncio.Future[str] = self.loop.create_future()
        self._waiters.append((fragment, waiter))
        async with asyncio.timeout(timeout):
            return await waiter


@pytest.fixture
async def log_watch() -> AsyncIterator[LogWatch]:
    handler = LogWatch(asyncio.get_running_loop())
    logger = logging.getLogger("coobill")
    previous = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


@pytest.fixture
async def fake_ami() -> AsyncIterator[FakeAmiServer]:
    server = await FakeAmiServer(secret="lab-secret").start()
    yield server
    await server.close()


class ChannelsComingAndGoing(FakeAmiServer):
    """Answers each CoreShowChannels with the next of `listings` (the last one repeats): what
    a busy PBX does when a channel comes up between two listings. A listing of None drops the
    connection instead of answering."""

    listings: list[list[Frame] | None]

    @property  # type: ignore[override]
    def live_channels(self) -> list[Frame]:
        listing = self.listings.pop(0) if len(self.listings) > 1 else self.listings[0]
        if listing is None:
            self.drop()
            return []
        return listing

    @live_channels.setter
    def live_channels(self, frames: Sequence[Frame]) -> None:
        self.listings = [list(frames)]


@pytest.fixture
async def pbx() -> AsyncIterator[ChannelsComingAndGoing]:
    server = await ChannelsComingAndGoing(secret="lab-secret").start()
    yield server
    await server.close()


def daemon_settings(
    ctx: BillingContext, fake_ami: FakeAmiServer, *, agi: dict[str, Any] | None = None, **ami: Any
) -> Settings:
    return Settings(
        database={"url": str(ctx.uow.engine.url)},
        web={"enabled": False},
        agi={"port": 0, **(agi or {})},
        billing={"max_call_seconds": 600},
        ami={
            "port": fake_ami.port,
            "secret": "lab-secret",
            "cdr_events": "on",
            "reconnect_seconds": 0.05,
            "cdr_grace_seconds": 0.2,
            **ami,
        },
    )


async def start_daemon(ctx: BillingContext, fake_ami: FakeAmiServer, **options: Any) -> Daemon:
    """A Daemon run in-process on `ctx`'s ledger, logged in to the fake AMI and done with
    reconciling its holds with the channels the fake lists."""
    settings = daemon_settings(ctx, fake_ami, **options)
    ctx.config = settings
    daemon = Daemon(settings, ctx=ctx)
    await daemon.start()
    await fake_ami.next_login()
    await daemon.events.reconciled.reached(1)
    return daemon


@pytest.fixture
async def run_daemon(ctx: BillingContext, fake_ami: FakeAmiServer) -> AsyncIterator[Any]:
    """Starts daemons on the test's ledger; each is stopped at the end of the test (a second
    stop() after the test's own does nothing more)."""
    started: list[Daemon] = []

    async def start(**options: Any) -> Daemon:
        started.append(await start_daemon(ctx, fake_ami, **options))
        return started[-1]

    yield start
    for daemon in started:
        await daemon.stop()
