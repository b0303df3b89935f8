"""Portal users (admins only): list them, add a billing user or another admin, set a user's
password, remove a user."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from coobill.errors import BadRequest, UnknownUser
from coobill.services import users
from coobill.services.users import ROLES
from coobill.web.auth import AdminUser, check_csrf, keep_session_after_new_password, portal
from coobill.web.render import redirect, render

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])


async def _page(request: Request, admin: AdminUser, status: int = 200, **extra: object) -> Response:
    context: dict[str, object] = {
        "roles": ROLES, "values": {"role": "billing"}, "errors": {},
        "users": await users.list_users(portal(request).ctx), "me": admin,
    }
    context.update(extra)
    return await render(request, "users.html", context, status)


@router.get("/users", response_class=HTMLResponse)
async def user_page(request: Request, admin: AdminUser) -> Response:
    return await _page(request, admin)


@router.post("/users", response_class=HTMLResponse)
async def add_user(request: Request, admin: AdminUser) -> Response:
    form = await request.form()
    values = {k: str(form.get(k) or "") for k in ("name", "role")}
    try:
        await users.add_user(
            portal(request).ctx, values["name"], str(form.get("password") or ""), values["role"]
        )
    except BadRequest as exc:
        return await _page(request, admin, 400, values=values,
                           errors={exc.field or "form": exc.message})
    return redirect("/users", notice="user_added")


@router.post("/users/password", response_class=HTMLResponse)
async def set_password(request: Request, admin: AdminUser) -> Response:
    form = await request.form()
    name = str(form.get("user") or "")
    try:
        changed = await users.set_password(
            portal(request).ctx, name, str(form.get("new_password") or ""))
    except (BadRequest, UnknownUser) as exc:
        field = "new_password" if exc.field == "password" else "user"
        return await _page(request, admin, 400, chosen=name, errors={field: exc.message})
    response = redirect("/users", notice="password_set")
    if changed.id == admin.id:  # your own: this session goes on, your other ones end
        keep_session_after_new_password(request, response, admin.id, changed.credential)
    return response


@router.post("/users/remove", response_class=HTMLResponse)
async def remove_user(request: Request, admin: AdminUser) -> Response:
    form = await request.form()
    try:
        await users.remove_user(portal(request).ctx, str(form.get("user") or ""), by=admin.id)
    except (BadRequest, UnknownUser) as exc:
        return await _page(request, admin, 400, errors={"remove": exc.message})
    return redirect("/users", notice="user_removed")
