"""The portal's connections on a real socket: capped in number, closed when their headers are
too slow (also on a kept-alive connection), and X-Forwarded-For believed only from a
configured proxy."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI, Request

from coobill.config import WebConfig
from coobill.web.connections import listen, server_config


def peer_app() -> FastAPI:
    app = FastAPI()

    @app.get("/peer")
    async def peer(request: Request) -> dict[str, str]:
        return {"client": request.client.host if request.client else ""}

    return app


class Listening(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    async def startup(self, sockets: list | None = None) -> None:  # type: ignore[type-arg]
        await super().startup(sockets)
        self.listening.set()


@asynccontextmanager
async def portal_on(web: WebConfig) -> AsyncIterator[int]:
    """The portal's server configuration on a port the OS picks; yields the port."""
    sock = listen(web)
    server = Listening(server_config(peer_app(), web))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    await asyncio.wait({serving, asyncio.ensure_future(server.listening.wait())},
                       return_when=asyncio.FIRST_COMPLETED)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await serving


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """Whether the server closes the connection (EOF) within `seconds`."""
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(65536):
                pass
        return True
    except ConnectionResetError:  # closed with a reset: closed all the same
        return True
    except TimeoutError:
        return False


async def hang_up(writer: asyncio.StreamWriter) -> None:
    writer.close()
    await writer.wait_closed()


GET = b"GET /peer HTTP/1.1\r\nHost: portal\r\n"


class TestHeaderTimeout:
    async def test_a_connection_that_does_not_finish_its_headers_in_time_is_closed(self) -> None:
        async with portal_on(WebConfig(port=0, header_timeout_seconds=0.3)) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            began = time.monotonic()
            writer.write(GET)  # and never the blank line
            assert await closed_within(reader, 5)
            assert time.monotonic() - began >= 0.25
            await hang_up(writer)

    async def test_the_next_request_on_a_kept_alive_connection_gets_the_same_deadline(
        self
    ) -> None:
        async with portal_on(WebConfig(port=0, header_timeout_seconds=0.5,
                                       keep_alive_seconds=30)) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(GET + b"\r\n")
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
            writer.write(b"GET /peer HTTP/1.1\r\n")  # one line, then a slowloris' silence
            assert await closed_within(reader, 5)
            await hang_up(writer)

    async def test_unfinished_headers_longer_than_the_limit_are_refused_without_waiting(
        self
    ) -> None:
        """h11 buffers at most max_header_bytes of a request it cannot parse yet."""
        async with portal_on(WebConfig(port=0, max_header_bytes=2048)) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(GET + b"X-Filler: " + b"a" * 4096)
            assert (await reader.read(100)).startswith(b"HTTP/1.1 400")
            await hang_up(writer)


class TestConnectionCap:
    async def test_connections_beyond_the_cap_are_closed_at_once_and_a_free_slot_serves(
        self
    ) -> None:
        async with portal_on(WebConfig(port=0, max_connections=3)) as port:
            held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
            # The server sees each connection in the order they were made: wait until it has
            # the three (a request on the third is answered), then the fourth is too many.
            reader, writer = held[2]
            writer.write(GET + b"\r\n")
            await reader.readuntil(b"\r\n\r\n")
            extra_reader, extra_writer = await asyncio.open_connection("127.0.0.1", port)
            assert await closed_within(extra_reader, 2)
            for w in (extra_writer, *(w for _, w in held)):
                await hang_up(w)


class TestForwardedFor:
    async def test_x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(self) -> None:
        import httpx

        spoof = {"X-Forwarded-For": "203.0.113.9"}
        async with portal_on(WebConfig(port=0)) as port, httpx.AsyncClient() as web:
            seen = (await web.get(f"http://127.0.0.1:{port}/peer", headers=spoof)).json()
            assert seen == {"client": "127.0.0.1"}
        async with portal_on(WebConfig(port=0, trusted_proxies=("127.0.0.1",))) as port, \
                httpx.AsyncClient() as web:
            seen = (await web.get(f"http://127.0.0.1:{port}/peer", headers=spoof)).json()
            assert seen == {"client": "203.0.113.9"}
