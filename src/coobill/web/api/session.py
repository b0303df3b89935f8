"""Logging in and out over the API, the user's language, and (admins) adding portal users."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Depends, Request, Response

from coobill.errors import LoginRequired, TooManyAttempts
from coobill.services import users
from coobill.services.users import PortalUser
from coobill.web.api.schemas import LanguageIn, LoginIn, LoginOut, PasswordIn, UserIn, UserOut
from coobill.web.auth import (
    AdminUser,
    BillingUser,
    begin_session,
    check_csrf,
    client_address,
    end_session,
    end_sessions_after_new_password,
    keep_session_after_new_password,
    portal,
)

router = APIRouter(prefix="/api", tags=["session"])


def user_json(user: PortalUser) -> UserOut:
    return UserOut.model_validate(asdict(user))


@router.post("/login", responses={401: {}, 429: {}})
async def login(body: LoginIn, request: Request, response: Response) -> LoginOut:
    """Start a session (an HttpOnly cookie); 5 failures per name and address in 5 minutes
    lock that pair out for the rest of the 5 minutes (429)."""
    state = portal(request)
    address = client_address(request)
    wait = state.throttle.retry_after(body.name, address)
    if wait:
        raise TooManyAttempts(f"too many failed logins; try again in {wait} seconds", wait)
    user = await users.authenticate(state.ctx, body.name, body.password)
    if user is None:
        state.throttle.failed(body.name, address)
        raise LoginRequired("wrong user name or password", field="password")
    state.throttle.succeeded(body.name, address)
    session = await begin_session(request, response, user)
    return LoginOut(user=user_json(user), csrf_token=session.csrf)


@router.post("/logout", status_code=204, dependencies=[Depends(check_csrf)])
async def logout(request: Request, response: Response) -> None:
    """End the session on the server: its cookie, and any copy of it, logs in no more."""
    await end_session(request, response)


@router.get("/me")
async def me(user: BillingUser) -> UserOut:
    return user_json(user)


@router.post("/me/language", dependencies=[Depends(check_csrf)])
async def choose_language(body: LanguageIn, request: Request, user: BillingUser) -> UserOut:
    """The interface's language for this user: en or zh (Simplified Chinese)."""
    return user_json(await users.set_language(portal(request).ctx, user.id, body.language))


@router.post("/users", status_code=201, dependencies=[Depends(check_csrf)], responses={403: {}})
async def add_user(body: UserIn, request: Request, admin: AdminUser) -> UserOut:
    """Admins only: add a portal user (role billing or admin)."""
    return user_json(await users.add_user(portal(request).ctx, body.name, body.password, body.role))


@router.get("/users", responses={403: {}})
async def list_users(request: Request, admin: AdminUser) -> list[UserOut]:
    """Admins only: every portal user, by name."""
    return [user_json(u) for u in await users.list_users(portal(request).ctx)]


@router.put("/users/{name}/password", dependencies=[Depends(check_csrf)],
            responses={403: {}, 404: {}})
async def set_password(
    name: str, body: PasswordIn, request: Request, response: Response, admin: AdminUser
) -> UserOut:
    """Admins only: give a user a new password; the user's sessions end (your own: this one
    goes on, with a renewed cookie and the same CSRF token)."""
    changed = await users.set_password(portal(request).ctx, name, body.password)
    await end_sessions_after_new_password(request, changed.id)
    if changed.id == admin.id:
        keep_session_after_new_password(request, response, admin.id, changed.credential)
    return user_json(changed)


@router.delete("/users/{name}", dependencies=[Depends(check_csrf)], responses={403: {}, 404: {}})
async def remove_user(name: str, request: Request, admin: AdminUser) -> UserOut:
    """Admins only: remove a user (not yourself, not the last admin); their sessions end."""
    return user_json(await users.remove_user(portal(request).ctx, name, by=admin.id))
