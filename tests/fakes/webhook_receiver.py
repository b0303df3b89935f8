"""A webhook receiver on loopback speaking plain HTTP/1.1, as an operator's system would: it
records every request, checks its signature with its own HMAC (not coobill's code), and can
be down, slow, failing, or hold a request unanswered until told (the moment to kill a sender
mid-delivery)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Received:
    key: str
    kind: str
    extension: str
    event: dict  # type: ignore[type-arg]
    signed: bool  # the signature header is HMAC-SHA256(secret, "<timestamp>.<body>")


class WebhookReceiver:
    def __init__(self, secret: str) -> None:
        self.secret = secret.encode()
        self.received: list[Received] = []  # every request, in arrival order
        self.answered: list[Received] = []  # those answered 2xx
        self.delay = 0.0  # seconds before each answer (a slow receiver)
        self.delays: list[float] = []  # the next answers' own delays, before `delay` applies
        self.status = 200
        self.hold_next = False  # keep the next request unanswered until `release()`
        self.holding = asyncio.Event()
        self._release = asyncio.Event()
        self._changed = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        self.connections = 0  # accepted, over its life

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Down: nothing listens on the port any more (connections are refused)."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    def release(self) -> None:
        self._release.set()

    async def until(self, wanted: Callable[[], bool], timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            while not wanted():
                self._changed.clear()
                await self._changed.wait()

    def first_answered_keys(self, extension: str) -> list[str]:
        """The events of `extension` in the order they were first answered 2xx."""
        seen: list[str] = []
        for got in self.answered:
            if got.extension == extension and got.key not in seen:
                seen.append(got.key)
        return seen

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self.connections += 1
        try:
            while True:
                request = await self._read(reader)
                if request is None:
                    return
                got = self._record(*request)
                if self.hold_next:
                    self.hold_next = False
                    self.holding.set()
                    self._changed.set()
                    await self._release.wait()
                delay = self.delays.pop(0) if self.delays else self.delay
                if delay:
                    await asyncio.sleep(delay)  # the fake's behaviour: a slow system
                status = self.status
                writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode())
                await writer.drain()
                if 200 <= status < 300:
                    self.answered.append(got)
                self._changed.set()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> tuple[dict[str, str], bytes] | None:
        line = await reader.readline()
        if not line:
            return None
        headers: dict[str, str] = {}
        while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = header.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        return headers, body

    def _record(self, headers: dict[str, str], body: bytes) -> Received:
        stamp = headers.get("x-coobill-timestamp", "")
        expected = "sha256=" + hmac.new(self.secret, stamp.encode() + b"." + body,
                                        hashlib.sha256).hexdigest()
        event = json.loads(body)
        got = Received(headers.get("idempotency-key", ""), headers.get("x-coobill-event", ""),
                       event["extension"], event,
                       hmac.compare_digest(expected, headers.get("x-coobill-signature", "")))
        self.received.append(got)
        self._changed.set()
        return got
