"""The holiday calendar: its dates, add one, remove one (rates set to only/except use it)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from coobill.errors import BadRequest
from coobill.services import holidays
from coobill.web.auth import BillingUser, check_csrf, portal
from coobill.web.render import redirect, render

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])


async def _page(request: Request, values: dict[str, Any], errors: dict[str, str] | None = None
                ) -> Response:
    return await render(request, "holidays.html", {
        "holidays": await holidays.list_holidays(portal(request).ctx),
        "values": values, "errors": errors or {},
    }, 400 if errors else 200)


@router.get("/holidays", response_class=HTMLResponse)
async def holiday_list(request: Request, user: BillingUser) -> Response:
    return await _page(request, {})


@router.post("/holidays", response_class=HTMLResponse)
async def add_holiday(request: Request, user: BillingUser) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    try:
        await holidays.add_holiday(portal(request).ctx, form.get("day", ""),
                                   yearly=form.get("yearly") == "on", name=form.get("name", ""))
    except BadRequest as exc:
        return await _page(request, form, {exc.field or "form": exc.message})
    return redirect("/holidays", notice="holiday_added")


@router.post("/holidays/{holiday_id}/delete")
async def remove_holiday(request: Request, user: BillingUser, holiday_id: int) -> Response:
    await holidays.remove_holiday(portal(request).ctx, holiday_id=holiday_id)
    return redirect("/holidays", notice="holiday_removed")
