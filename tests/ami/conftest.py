from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from coobill.ami import AmiFollower, ChannelEnded, FollowerOptions
from tests.fakes.ami_server import BASIC, PJSIP, FakeAmiServer, Frame, read_trace

WAIT = 5.0  # the longest any test waits for something that should happen at once


def expected(lab: Path) -> dict[str, dict[str, Any]]:
    return json.loads((lab / "expected.json").read_text())


def dialled(lab: Path) -> dict[str, dict[str, Any]]:
    """Scenarios that reached Dial, by the gated channel's uniqueid."""
    return {s["uniqueid"]: s for s in expected(lab).values() if s["dialled"]}


def capture_start(frames: list[Frame]) -> float:
    """The epoch of `#t=0`: a Uniqueid is its channel's creation time in epoch seconds."""
    first = next(f for f in frames if f.event == "Newchannel")
    return int(float(first.get("Uniqueid"))) - first.t


class Recorder:
    """Stands in for the service layer: records what the follower hands over."""

    def __init__(self) -> None:
        self.calls: list[ChannelEnded] = []
        self.reconciled: list[set[str]] = []
        self.fail_first_call = False
        self._changed = asyncio.Condition()

    async def on_call_ended(self, call: ChannelEnded) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()
        if self.fail_first_call and len(self.calls) == 1:
            raise RuntimeError("database is down")

    async def on_reconciled(self, live: set[str]) -> None:
        async with self._changed:
            self.reconciled.append(live)
            self._changed.notify_all()

    async def until(self, predicate: Callable[[], bool], timeout: float = WAIT) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    def uniqueids(self) -> list[str]:
        return [c.uniqueid for c in self.calls]


class LogWatch(logging.Handler):
    """Lets a test await a log line (handlers run on the loop's thread, in the emitter)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        self._changed.set()

    def count(self, fragment: str) -> int:
        return sum(fragment in line for line in self.lines)

    async def until(self, fragment: str, times: int = 1, timeout: float = WAIT) -> None:
        async def seen() -> None:
            while self.count(fragment) < times:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(seen(), timeout)


@pytest.fixture
def log_watch() -> Iterator[LogWatch]:
    watch = LogWatch()
    logger = logging.getLogger("coobill.ami")
    logger.addHandler(watch)
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    yield watch
    logger.removeHandler(watch)
    logger.setLevel(previous)


@pytest.fixture(scope="session")
def basic_trace() -> list[Frame]:
    return read_trace(BASIC / "ami-all.txt")


@pytest.fixture(scope="session")
def pjsip_trace() -> list[Frame]:
    return read_trace(PJSIP / "ami-all.txt")


@pytest.fixture
async def ami_server() -> AsyncIterator[Callable[..., Awaitable[FakeAmiServer]]]:
    servers: list[FakeAmiServer] = []

    async def start(**options: Any) -> FakeAmiServer:
        server = await FakeAmiServer(**options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def follow() -> AsyncIterator[Callable[..., Awaitable[tuple[AmiFollower, Recorder]]]]:
    """Starts followers with test-sized timers; each is stopped when the test ends."""
    followers: list[AmiFollower] = []

    async def start(server: FakeAmiServer, **options: Any) -> tuple[AmiFollower, Recorder]:
        recorder = Recorder()
        settings: dict[str, Any] = {
            "reconnect_seconds": 0.01, "max_reconnect_seconds": 0.05, "action_timeout": WAIT,
            "ping_interval": WAIT, "ping_timeout": WAIT, "tick_seconds": 0.05,
        }
        settings.update(options)
        secret = settings.pop("secret", server.secret)
        follower = AmiFollower(
            FollowerOptions(server.host, server.port, server.username, secret, **settings),
            on_call_ended=recorder.on_call_ended, on_reconciled=recorder.on_reconciled,
        )
        followers.append(follower)
        await follower.start()
        return follower, recorder

    yield start
    for follower in followers:
        await follower.stop(drain_seconds=WAIT)
