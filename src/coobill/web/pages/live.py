"""Live calls: what each call in progress holds, and the holds recovery flagged to resolve."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from coobill.errors import BadRequest
from coobill.services import reservations
from coobill.web.auth import BillingUser, check_csrf, portal
from coobill.web.render import redirect, render

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])


async def _live_page(request: Request, errors: dict[str, str] | None = None) -> Response:
    held = await reservations.list_held(portal(request).ctx)
    return await render(
        request, "live.html", {"held": held, "errors": errors or {}}, 400 if errors else 200
    )


@router.get("/live", response_class=HTMLResponse)
async def live_calls(request: Request, user: BillingUser) -> Response:
    return await _live_page(request)


@router.post("/live/{uniqueid}/release")
async def release(request: Request, user: BillingUser, uniqueid: str) -> Response:
    await reservations.release(portal(request).ctx, uniqueid)
    return redirect("/live", notice="released")


@router.post("/live/{uniqueid}/charge")
async def charge(request: Request, user: BillingUser, uniqueid: str) -> Response:
    form = await request.form()
    try:
        await reservations.charge(portal(request).ctx, uniqueid,
                                  reservations.charge_seconds(form.get("seconds")))
    except BadRequest as exc:
        return await _live_page(request, {uniqueid: exc.message})
    return redirect("/live", notice="charged")
