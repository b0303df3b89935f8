"""The portal served by uvicorn on 127.0.0.1 (a port the OS picks), and headless Chromium."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from playwright.async_api import Browser, async_playwright

from coobill.services.context import BillingContext
from coobill.web.app import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class PortalServer(uvicorn.Server):
    """uvicorn that says when it is listening, instead of being polled."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.listening.set()


@asynccontextmanager
async def serve_portal(ctx: BillingContext) -> AsyncIterator[str]:
    """The portal's base URL while the block runs, on the test's own event loop."""
    config = uvicorn.Config(
        create_app(ctx),
        host="127.0.0.1",
        port=0,
        lifespan="off",
        ws="none",
        http="h11",
        log_level="warning",
    )
    server = PortalServer(config)
    serving = asyncio.create_task(server.serve())
    listening = asyncio.create_task(server.listening.wait())
    await asyncio.wait({serving, listening}, return_when=asyncio.FIRST_COMPLETED)
    if not server.started:
        listening.cancel()
        await serving  # raises what stopped uvicorn from starting
        raise RuntimeError("uvicorn did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()
