"""The portal's request body cap, applied before any work: a pure ASGI middleware.

A body announced larger than `max_body_bytes` (Content-Length) is answered 413 before a byte
of it is read; a body without a length (chunked) is counted as it streams in, and the read
that goes past the cap raises BodyTooLarge, an HTTP 413 the app's error handlers answer. So
no handler, form parser or JSON decoder ever holds more than the cap in memory.

A NUL character in the address (%00), a form field or a JSON string is answered 400 here too:
no field means one, and PostgreSQL refuses the character in any text it is sent, which was a
500 from every page that filters by its query (extensions, records, webhooks) and every form
saving a free text (an extension's name, a holiday's).
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


class NulInRequest(HTTPException):
    """A form field or JSON string holds a NUL character."""

    def __init__(self) -> None:
        super().__init__(400, "the request may not hold a NUL character (%00, \\u0000)")


class BodySizeLimit:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _holds_nul(scope):
            await _refuse(send, 400, "the address may not hold a NUL character (%00)")
            return
        limit = self.max_body_bytes
        announced = _content_length(scope)
        if announced is None or announced > limit:
            await _refuse(send, 400 if announced is None else 413,
                          "Content-Length is not a number" if announced is None
                          else f"the request body is larger than {limit} bytes")
            return
        received = 0
        nul, tail = _nul_in_body(scope), b""

        async def counted() -> Message:
            nonlocal received, tail
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > limit:
                    raise BodyTooLarge(limit)
                if nul is not None:
                    if nul in tail + chunk:
                        raise NulInRequest
                    tail = (tail + chunk)[1 - len(nul):]
            return message

        await self.app(scope, counted, send)


def _holds_nul(scope: Scope) -> bool:
    query = bytes(scope.get("query_string", b""))
    return "\x00" in scope.get("path", "") or b"%00" in query or b"\x00" in query


def _nul_in_body(scope: Scope) -> bytes | None:
    """How a NUL is spelt in this body: %00 in a form, \\u0000 in JSON (None: not looked for -
    an upload's bytes are its parser's to judge)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            kind = value.split(b";")[0].strip().lower()
            if kind == b"application/x-www-form-urlencoded":
                return b"%00"
            if kind == b"application/json":
                return b"\\u0000"
    return None


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
