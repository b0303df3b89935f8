"""Errors as HTTP: one table from coobill's errors to statuses, and the portal's own refusals.

An /api request gets `{"error", "message", "field"}`; a page gets a redirect to the login
page (401) or a small error page.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from coobill.errors import (
    BadRequest,
    CoobillError,
    UnknownExtension,
    UnknownRate,
    UnknownReservation,
    UnknownUser,
)
from coobill.services.passwords import PasswordChecksBusy


class LoginRequired(CoobillError):
    """No valid session: log in first."""


class Forbidden(CoobillError):
    """The user's role may not do this."""


class CsrfRefused(CoobillError):
    """An unsafe request without the session's CSRF token."""


class TooManyAttempts(CoobillError):
    """Too many failed logins for this name from this address."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, field="password")
        self.retry_after = retry_after


class NotFound(CoobillError):
    """Nothing at this address (a hold that is gone, a page that does not exist)."""


STATUS: dict[type[CoobillError], tuple[int, str]] = {
    BadRequest: (400, "bad_request"),
    LoginRequired: (401, "login_required"),
    Forbidden: (403, "forbidden"),
    CsrfRefused: (403, "csrf"),
    UnknownExtension: (404, "unknown_extension"),
    UnknownRate: (404, "unknown_rate"),
    UnknownUser: (404, "unknown_user"),
    UnknownReservation: (404, "unknown_reservation"),
    NotFound: (404, "not_found"),
    TooManyAttempts: (429, "too_many_attempts"),
    PasswordChecksBusy: (503, "busy"),
}


def status_of(exc: CoobillError) -> tuple[int, str]:
    for kind in type(exc).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 409, "conflict"  # a state the request cannot apply to, e.g. a hold already settled


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/api"


def error_json(status: int, error: str, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "message": message, "field": field}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    from coobill.web.render import render_error  # pages import templates; keep this lazy

    @app.exception_handler(CoobillError)
    async def coobill_error(request: Request, exc: CoobillError) -> Response:
        status, error = status_of(exc)
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyAttempts) else {}
        if isinstance(exc, PasswordChecksBusy):
            headers = {"Retry-After": "1"}
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
