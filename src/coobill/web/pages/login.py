"""Logging in and out, and choosing the interface's language."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from coobill.errors import BadRequest, PasswordChecksBusy
from coobill.services import users
from coobill.web.auth import (
    CSRF_FIELD,
    BillingUser,
    begin_session,
    check_csrf,
    client_address,
    end_session,
    portal,
    session_of,
    set_session,
    token_matches,
)
from coobill.web.i18n import LANGUAGES, translator
from coobill.web.render import page_language, redirect, render
from coobill.web.sessions import Session

router = APIRouter(include_in_schema=False)


def local_path(target: str | None, default: str = "/extensions") -> str:
    """Only a path on this portal: never an open redirect to another site."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return default


@router.get("/")
async def home() -> RedirectResponse:
    return redirect("/extensions")


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str | None = None) -> Response:
    session = session_of(request)
    if session is None:
        session = portal(request).signer.new()
        request.state.session = session  # the form carries its CSRF token
    response = await render(request, "login.html", {"next": local_path(next), "values": {}})
    set_session(request, response, session)
    return response


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    state = portal(request)
    form = await request.form()
    name, password = str(form.get("name") or ""), str(form.get("password") or "")
    target = local_path(str(form.get("next") or ""))
    if str(form.get("lang") or "") in LANGUAGES:
        request.state.language = str(form.get("lang"))
    shown_in = page_language(request)
    t = translator(shown_in)
    session = session_of(request)
    if session is None or not token_matches(session, str(form.get(CSRF_FIELD) or "")):
        session = state.signer.new()
        error = t("Your login form expired (cookies must be enabled). Please try again.")
        return await _login_again(request, session, name, target, error, 403)
    try:
        users.check_login_fields(name, password)  # before the throttle and any hashing
    except BadRequest as exc:
        return await _login_again(request, session, name[:users.MAX_NAME], target, exc.message,
                                  400)
    address = client_address(request)
    wait = state.throttle.retry_after(name, address)
    if wait:
        error = t("Too many failed logins. Try again in {seconds} seconds.", seconds=wait)
        response = await _login_again(request, session, name, target, error, 429)
        response.headers["Retry-After"] = str(wait)
        return response
    try:
        user = await users.authenticate(state.ctx, name, password)
    except PasswordChecksBusy as exc:
        response = await _login_again(request, session, name, target, exc.message, 503)
        response.headers["Retry-After"] = "1"
        return response
    if user is None:
        state.throttle.failed(name, address)
        return await _login_again(
            request, session, name, target, t("Wrong user name or password."), 401
        )
    state.throttle.succeeded(name, address)
    if user.language != shown_in:
        # The portal goes on in the language the login page was in: the one the user chose
        # there, or the one the browser asked for.
        user = await users.set_language(state.ctx, user.id, shown_in)
    response = redirect(target)
    # A new CSRF token and server-side session per login; the credential ends the session if
    # the password changes.
    await begin_session(request, response, user)
    return response


async def _login_again(
    request: Request, session: Session, name: str, target: str, error: str, status: int
) -> Response:
    request.state.session = session
    response = await render(
        request,
        "login.html",
        {
            "next": target,
            "values": {"name": name},
            "errors": {"password": error},
        },
        status,
    )
    set_session(request, response, session)
    return response


@router.post("/logout", dependencies=[Depends(check_csrf)])
async def logout(request: Request) -> Response:
    response = redirect("/login")
    await end_session(request, response)
    return response


@router.post("/language", dependencies=[Depends(check_csrf)])
async def choose_language(request: Request, user: BillingUser) -> Response:
    form = await request.form()
    await users.set_language(portal(request).ctx, user.id, str(form.get("language") or ""))
    return redirect(local_path(str(form.get("next") or "")))
