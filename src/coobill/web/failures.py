"""Errors as HTTP: each of coobill's errors carries its status (errors.py is the one table).

An /api request gets `{"error", "message", "field"}`; a page gets a redirect to the login
page (401) or a small error page.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from coobill.errors import (  # re-exported: the portal's refusals live in errors.py too
    CoobillError,
    CsrfRefused,
    Forbidden,
    LoginRequired,
    NotFound,
    TooManyAttempts,
)
from coobill.web.render import render_error

__all__ = ["CsrfRefused", "Forbidden", "LoginRequired", "NotFound", "TooManyAttempts",
           "install_error_handlers", "status_of"]


def status_of(exc: CoobillError) -> tuple[int, str]:
    """The HTTP status and the API's error word: the error's own (errors.py is the table)."""
    return exc.http_status, exc.kind


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/api"


def error_json(status: int, error: str, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "message": message, "field": field}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CoobillError)
    async def coobill_error(request: Request, exc: CoobillError) -> Response:
        status, error = status_of(exc)
        headers = {} if exc.retry_after is None else {"Retry-After": str(exc.retry_after)}
        if is_api(request):
            response = error_json(status, error, exc.message, exc.field)
            response.headers.update(headers)
            return response
        if isinstance(exc, LoginRequired):
            target = request.url.path if request.method == "GET" else "/"
            return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
        return await render_error(request, status, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        # The top-level name only: pydantic adds list indexes and union members ("amount.str").
        names = [str(p) for p in first["loc"] if p not in ("body", "query", "path", "header")]
        field = names[0] if names else ""
        reason = str(first["msg"]).removeprefix("Value error, ")  # our validators' own words
        message = f"{field}: {reason}" if field else reason
        if is_api(request):
            return error_json(400, "bad_request", message, field or None)
        return await render_error(request, 400, message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if is_api(request) or exc.status_code not in (404, 405):
            return error_json(exc.status_code, "http", str(exc.detail))
        return await render_error(request, exc.status_code, str(exc.detail))
