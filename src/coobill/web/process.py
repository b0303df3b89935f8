"""The portal's own process: `python -m coobill.web.process LINK_FD LISTEN_FD`, started by the
daemon (daemon/portal.py), never by hand.

Why a process: nothing a portal visitor does (password hashing, slow clients, a flood of
connections, a big page) can take the gate's event loop, its file descriptors or, at nice 10,
its CPU. The portal reaches the ledger on its own connections (SQLite in WAL mode serves
several processes; PostgreSQL trivially) and seals entries with the same ledger key.

The link, a socketpair with the daemon, carries one JSON object per line:

    daemon -> portal   {"hello": {...}}             first: settings, database, keys
    portal -> daemon   {"ready": true}              serving
    portal -> daemon   {"id": 7, "ask": "health"}   or "metrics": the daemon's own view
    daemon -> portal   {"id": 7, "status": 200, "body": "...", "type": "..."}

The portal ends when the link does (EOF: the daemon stopped, or died: then the kernel's
PR_SET_PDEATHSIG says so too), so no portal outlives its daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import itertools
import json
import logging
import os
import signal
import socket
import sys
from typing import Any

from fastapi import APIRouter, FastAPI, Response

log = logging.getLogger("coobill.web")

# How long /healthz and /metrics wait for the daemon's answer before saying it is not answering.
ASK_TIMEOUT_SECONDS = 5.0
PR_SET_PDEATHSIG = 1


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


async def read_message(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """The next message, or None at EOF."""
    line = await reader.readline()
    if not line:
        return None
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("portal link: a message must be a JSON object")
    return message


class DaemonLink:
    """The portal's side of the link: asks the daemon and matches answers to questions."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}

    def say(self, message: dict[str, Any]) -> None:
        self._writer.write(encode(message))

    async def ask(self, question: str) -> dict[str, Any] | None:
        """The daemon's answer, or None when it gave none in time."""
        number = next(self._ids)
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[number] = answer
        try:
            self.say({"id": number, "ask": question})
            async with asyncio.timeout(ASK_TIMEOUT_SECONDS):
                return await answer
        except (TimeoutError, ConnectionError):
            return None
        finally:
            self._waiting.pop(number, None)

    async def follow(self) -> None:
        """Hand each answer to its question, until the daemon closes the link."""
        while (message := await read_message(self._reader)) is not None:
            waiting = self._waiting.get(int(message.get("id", 0)))
            if waiting is not None and not waiting.done():
                waiting.set_result(message)


def operations_router(link: DaemonLink) -> APIRouter:
    """/healthz and /metrics on the portal's port, answered by the daemon (whose AMI state,
    ledger connection and counters they report)."""
    router = APIRouter(include_in_schema=False)

    async def relay(question: str) -> Response:
        answer = await link.ask(question)
        if answer is None:
            return Response('{"status":"unhealthy","daemon":"not answering"}', status_code=503,
                            media_type="application/json")
        return Response(str(answer["body"]), status_code=int(answer["status"]),
                        media_type=str(answer["type"]))

    @router.get("/healthz")
    async def healthz() -> Response:
        return await relay("health")

    @router.get("/metrics")
    async def metrics() -> Response:
        return await relay("metrics")

    return router


def _die_with_parent(parent: int) -> None:
    """Linux: SIGTERM when the daemon dies, however it dies (the link's EOF is the portable
    signal; this one also covers a daemon stopped dead while the portal is busy)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def build_app(hello: dict[str, Any], link: DaemonLink) -> tuple[FastAPI, Any]:
    """The portal app on its own engine; returns (app, its billing context)."""
    from coobill.bootstrap import bootstrap
    from coobill.config import Settings
    from coobill.storage.db import create_engine
    from coobill.storage.uow import UnitOfWorkFactory
    from coobill.web.app import create_app

    settings = Settings.model_validate(hello["settings"])
    extra: dict[str, Any] = {}
    if hello.get("search_path"):
        extra["connect_args"] = {"server_settings": {"search_path": hello["search_path"]}}
    engine = create_engine(hello["database_url"],
                           busy_timeout_ms=settings.database.busy_timeout_ms, **extra)
    uow = UnitOfWorkFactory(engine, ledger_key=bytes.fromhex(hello["ledger_key"]))
    ctx = bootstrap(settings, uow=uow)
    app = create_app(ctx, secret=hello["session_secret"])
    app.include_router(operations_router(link))
    return app, ctx


async def serve(link_fd: int, listen_fd: int) -> int:
    import uvicorn

    from coobill.logs import configure_logging
    from coobill.services.ledger_seal import open_ledger
    from coobill.web.connections import server_config

    class PortalServer(uvicorn.Server):
        """Tells the daemon it is serving once uvicorn listens (uvicorn has no event for it)."""

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                link.say({"ready": True})

    reader, writer = await asyncio.open_unix_connection(sock=socket.socket(fileno=link_fd))
    first = await read_message(reader)
    if first is None or "hello" not in first:
        return 2
    hello = first["hello"]
    link = DaemonLink(reader, writer)
    # before the imports and the work; its CPU the daemon chose (daemon/portal.py, CpuSplit)
    os.nice(int(hello["settings"]["web"]["priority"]))
    app, ctx = build_app(hello, link)
    configure_logging(ctx.config.log)
    await open_ledger(ctx)  # the key is the ledger's, or the portal does not start
    listener = socket.socket(fileno=listen_fd)
    server = PortalServer(server_config(app, ctx.config.web))
    following = asyncio.create_task(link.follow(), name="portal-link")
    serving = asyncio.create_task(server.serve(sockets=[listener]), name="portal-http")
    log.info("web.starting pid=%s nice=%s", os.getpid(), os.nice(0))
    try:
        await asyncio.wait({following, serving}, return_when=asyncio.FIRST_COMPLETED)
        server.should_exit = True  # the daemon is gone: so is the portal
        await serving
    finally:
        following.cancel()
        await ctx.uow.dispose()
    return 0


def main(argv: list[str] | None = None) -> int:
    link_fd, listen_fd, parent = (int(a) for a in (argv or sys.argv[1:]))
    _die_with_parent(parent)
    os.umask(0o077)
    return asyncio.run(serve(link_fd, listen_fd))


if __name__ == "__main__":
    sys.exit(main())
