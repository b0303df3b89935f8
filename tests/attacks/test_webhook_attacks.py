"""Adversarial review of the webhook sender (issue 18): a hostile receiver - one that drips
its answer a byte at a time, or answers 200 with an endless body - must cost an attempt of
at most `webhooks.timeout_seconds` and no memory, not hold the sender (and every extension's
later events) for ever."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from coobill.bootstrap import bootstrap
from coobill.config import Settings
from coobill.daemon.webhooks import WebhookSender
from coobill.services import outbox
from coobill.services.context import BillingContext
from coobill.services.settings import change_settings
from tests.services.conftest import make_extension

SECRET = "receiver-shared-secret-0123456789"
Answer = Callable[[asyncio.StreamWriter], Awaitable[None]]


class HostileReceiver:
    """Reads each request whole, then answers with `answer`; counts what it sent."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests = 0
        self.sent = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/hook"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            self.requests += 1
            await self.answer(writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.tasks.discard(task)
            writer.close()


async def drip(writer: asyncio.StreamWriter) -> None:
    """The status line and headers, a byte every 50 ms, never finished: each read is quick,
    the answer never comes."""
    for byte in b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 1_000_000:
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(0.05)  # the fake's behaviour: a receiver dripping its answer


def endless_body(receiver: list[HostileReceiver]) -> Answer:
    async def answer(writer: asyncio.StreamWriter) -> None:
        """200 at once, then a body as fast as the socket takes it (a 10 GB Content-Length)."""
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\n")
        chunk = b"x" * 65536
        while True:
            writer.write(chunk)
            await writer.drain()
            receiver[0].sent += len(chunk)
    return answer


@pytest.fixture
async def ledger_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "ledger.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def started() -> AsyncIterator[list[HostileReceiver]]:
    made: list[HostileReceiver] = []
    yield made
    for receiver in made:
        await receiver.stop()


async def context_for(url: str, receiver: HostileReceiver) -> BillingContext:
    ctx = bootstrap(Settings(database={"url": url}, webhooks={
        "urls": [receiver.url], "secret": SECRET, "poll_seconds": 0.05,
        "max_backoff_seconds": 1, "timeout_seconds": 0.5}))
    await change_settings(ctx, timezone="UTC")
    return ctx


async def until(ctx: BillingContext, wanted: Callable[[list[outbox.EventView]], bool],
                seconds: float = 10.0) -> list[outbox.EventView]:
    async with asyncio.timeout(seconds):
        # The sender's marks are in the ledger: nothing here can signal them.
        while not wanted(found := await outbox.list_events(ctx)):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    return found


class TestAHostileReceiver:
    async def test_dripping_its_answer_costs_one_timeout_per_attempt(
        self, ledger_url: str, started: list[HostileReceiver]
    ) -> None:
        receiver = HostileReceiver(drip)
        started.append(receiver)
        await receiver.start()
        ctx = await context_for(ledger_url, receiver)
        sender = WebhookSender(ctx)
        try:
            await make_extension(ctx, "100", balance="1")
            sender.start()
            [event] = await until(ctx, lambda found: found[0].attempts >= 2)
            assert event.state == "pending"
            assert "timed out" in event.last_error
        finally:
            await sender.stop()
            await ctx.uow.dispose()

    async def test_a_200_with_an_endless_body_is_delivered_without_reading_it(
        self, ledger_url: str, started: list[HostileReceiver]
    ) -> None:
        receiver = HostileReceiver(endless_body(started))
        started.append(receiver)
        await receiver.start()
        ctx = await context_for(ledger_url, receiver)
        sender = WebhookSender(ctx)
        try:
            await make_extension(ctx, "100", balance="1")
            sender.start()
            [event] = await until(ctx, lambda found: found[0].state == "delivered")
            assert event.attempts == 1
        finally:
            await sender.stop()
            await ctx.uow.dispose()
        assert receiver.requests == 1
        # What the socket buffers took before the sender hung up, not the body.
        assert receiver.sent < 64 * 1024 * 1024
