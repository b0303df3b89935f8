"""Security headers on every portal response: a pure ASGI middleware.

The pages use only /static/portal.css and /static/portal.js (no inline script, style or
event handler), so the Content-Security-Policy allows this origin alone: an injected
`<script>` or `style=` does not run, and no other site may frame the portal (clickjacking).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# /api/docs (only with web.api_docs = true): FastAPI's Swagger UI page loads its script and
# stylesheet from jsDelivr and starts it with an inline script; that page alone allows them.
DOCS_PATH = "/api/docs"
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
    "style-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; img-src 'self' data: "
    "https://fastapi.tiangolo.com; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        wanted = SECURITY_HEADERS
        if scope.get("path") == DOCS_PATH:
            wanted = ((b"content-security-policy", DOCS_POLICY.encode()), *SECURITY_HEADERS[1:])

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                given = {name.lower() for name, _ in message.get("headers", ())}
                message["headers"] = [
                    *message.get("headers", ()),
                    *(h for h in wanted if h[0] not in given),
                ]
            await send(message)

        await self.app(scope, receive, with_headers)
