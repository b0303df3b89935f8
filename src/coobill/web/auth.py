"""Who is asking: the session cookie, the logged-in user, the role, the CSRF token.

Billing users do the billing (every page of the appliance's billing manual, settings
included, and resolving flagged holds); admins may do all of that and also manage portal
users, which billing users may not (403).
"""

from __future__ import annotations

import dataclasses
import hmac
from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, Request, Response
from fastapi.templating import Jinja2Templates

from coobill.errors import CsrfRefused, Forbidden, LoginRequired, UnknownUser
from coobill.services import portal_sessions, users
from coobill.services.context import BillingContext
from coobill.services.users import PortalUser
from coobill.web.sessions import COOKIE, MAX_AGE_SECONDS, Session, SessionSigner
from coobill.web.throttle import LoginThrottle

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
_UNSET = object()


@dataclass
class PortalState:
    """What every request handler needs, built once by create_app."""

    ctx: BillingContext
    signer: SessionSigner
    throttle: LoginThrottle
    templates: Jinja2Templates
    secure_cookies: bool = False


def portal(request: Request) -> PortalState:
    state: PortalState = request.app.state.portal
    return state


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def session_of(request: Request) -> Session | None:
    session = getattr(request.state, "session", _UNSET)
    if session is _UNSET:
        session = portal(request).signer.loads(request.cookies.get(COOKIE))
        request.state.session = session
    return cast("Session | None", session)


async def begin_session(request: Request, response: Response, user: PortalUser) -> Session:
    """Log `user` in: a new server-side session, and its cookie (with a new CSRF token)."""
    state = portal(request)
    session_id = await portal_sessions.begin(state.ctx, user.id, state.signer.instant())
    session = state.signer.new(user.id, user.credential, session_id)
    set_session(request, response, session)
    return session


async def end_session(request: Request, response: Response) -> None:
    """Logout: the server forgets the session, so the cookie is dead even where it was copied."""
    session = session_of(request)
    if session is not None and session.session_id:
        await portal_sessions.end(portal(request).ctx, session.session_id)
    clear_session(request, response)


def keep_session_after_new_password(
    request: Request, response: Response, user_id: int, credential: str
) -> None:
    """Your own new password: this session goes on (same CSRF token and server-side session,
    the new credential), the others end (their cookies carry the old credential)."""
    current = session_of(request)
    renewed = portal(request).signer.new(user_id, credential)
    if current is not None:
        renewed = dataclasses.replace(renewed, csrf=current.csrf, session_id=current.session_id)
    set_session(request, response, renewed)


async def end_sessions_after_new_password(request: Request, user_id: int) -> None:
    """Delete the rows of the sessions a new password ended (all the user's but this one)."""
    current = session_of(request)
    keep = current.session_id if current is not None and current.user_id == user_id else ""
    await portal_sessions.end_others(portal(request).ctx, user_id, keep=keep)


def set_session(request: Request, response: Response, session: Session) -> None:
    state = portal(request)
    request.state.session = session
    response.set_cookie(
        COOKIE,
        state.signer.dumps(session),
        max_age=MAX_AGE_SECONDS,
        httponly=True,
        samesite="lax",
        secure=state.secure_cookies,
        path="/",
    )


def clear_session(request: Request, response: Response) -> None:
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="lax", secure=portal(request).secure_cookies
    )


async def billing_user(request: Request) -> PortalUser:
    """The logged-in user (billing or admin); LoginRequired otherwise."""
    cached: PortalUser | None = getattr(request.state, "user", None)
    if cached is not None:
        return cached
    session = session_of(request)
    if session is None or session.user_id is None:
        raise LoginRequired("log in first")
    ctx = portal(request).ctx
    try:
        user = await users.get_user(ctx, session.user_id)
    except UnknownUser:
        raise LoginRequired("log in first") from None
    if not hmac.compare_digest(session.credential, user.credential):
        # The password changed since this login: the session is over, its row too.
        await portal_sessions.end(ctx, session.session_id)
        raise LoginRequired("log in first")
    if not await portal_sessions.is_live(ctx, session.session_id, user.id,
                                         portal(request).signer.instant()):
        raise LoginRequired("log in first")  # logged out, or past its 12 hours
    request.state.user = user
    return user


BillingUser = Annotated[PortalUser, Depends(billing_user)]


async def admin_user(user: BillingUser) -> PortalUser:
    if user.role != "admin":
        raise Forbidden("only an admin may do this")
    return user


AdminUser = Annotated[PortalUser, Depends(admin_user)]


async def check_csrf(request: Request) -> None:
    """Unsafe requests carry the session's token: X-CSRF-Token, or the form's csrf_token."""
    if request.method in SAFE_METHODS:
        return
    session = session_of(request)
    if session is None or session.user_id is None:
        raise LoginRequired("log in first")
    if not token_matches(session, await submitted_token(request)):
        raise CsrfRefused("the form has expired or did not come from this portal; reload the page")


async def submitted_token(request: Request) -> str:
    token = request.headers.get(CSRF_HEADER)
    if token:
        return token
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


def token_matches(session: Session, token: str) -> bool:
    return bool(token) and hmac.compare_digest(session.csrf.encode(), token.encode())
