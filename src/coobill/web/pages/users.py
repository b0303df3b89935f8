"""Portal users (admins only): add a billing user or another admin."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from coobill.errors import BadRequest
from coobill.services import users
from coobill.services.users import ROLES
from coobill.web.auth import AdminUser, check_csrf, portal
from coobill.web.render import redirect, render

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])


@router.get("/users", response_class=HTMLResponse)
async def user_form(request: Request, admin: AdminUser) -> Response:
    return await render(request, "users.html", {"roles": ROLES, "values": {"role": "billing"}})


@router.post("/users", response_class=HTMLResponse)
async def add_user(request: Request, admin: AdminUser) -> Response:
    form = await request.form()
    values = {k: str(form.get(k) or "") for k in ("name", "role")}
    try:
        await users.add_user(
            portal(request).ctx, values["name"], str(form.get("password") or ""), values["role"]
        )
    except BadRequest as exc:
        return await render(
            request,
            "users.html",
            {
                "roles": ROLES,
                "values": values,
                "errors": {exc.field or "form": exc.message},
            },
            400,
        )
    return redirect("/users", notice="user_added")
