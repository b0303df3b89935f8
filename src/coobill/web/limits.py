"""The portal's request body cap, applied before any work: a pure ASGI middleware.

A body announced larger than `max_body_bytes` (Content-Length) is answered 413 before a byte
of it is read; a body without a length (chunked) is counted as it streams in, and the read
that goes past the cap raises BodyTooLarge, an HTTP 413 the app's error handlers answer. So
no handler, form parser or JSON decoder ever holds more than the cap in memory.
"""

from __future__ import annotations

import json

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coobill.config import WebConfig

DEFAULT_MAX_BODY_BYTES = 64 * 1024


class BodyTooLarge(HTTPException):
    """The request's body is larger than the portal accepts."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


class BodySizeLimit:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        announced = _content_length(scope)
        if announced is None or announced > limit:
            await _refuse(send, 400 if announced is None else 413,
                          "Content-Length is not a number" if announced is None
                          else f"the request body is larger than {limit} bytes")
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    """The announced length; 0 when none is announced; None when it is not a number."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            # ASCII digits only, and few of them: int() would take '١٢' and a 4,300-digit
            # number would cost its conversion.
            if not (text.isascii() and text.isdigit()) or len(text) > 18:
                return None
            return int(text)
    return 0


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": "http", "message": message, "field": None}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]})
    await send({"type": "http.response.body", "body": body})


def install_request_guards(app: FastAPI, web: WebConfig) -> None:
    """The body cap and the security headers, outside every route (headers outermost, so
    even a 413 carries them)."""
    from coobill.web.headers import SecurityHeaders

    app.add_middleware(BodySizeLimit, max_body_bytes=web.max_body_bytes)
    app.add_middleware(SecurityHeaders)
