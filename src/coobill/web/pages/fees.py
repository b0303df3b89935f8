"""Recurring fees: the fees in force, a new one (a field's error beside it), stopping one.
The daemon charges them (services/fees.py); each charge shows among the recharge records."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from coobill.errors import BadRequest, UnknownExtension
from coobill.services import fees
from coobill.web.auth import BillingUser, check_csrf, portal
from coobill.web.render import redirect, render

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])

FIELDS = ("extension", "amount", "period", "over_credit", "name", "starts")


async def _page(request: Request, status: int = 200, **extra: object) -> Response:
    context: dict[str, object] = {
        "fees": await fees.list_fees(portal(request).ctx), "periods": fees.PERIODS,
        "over_credit": fees.OVER_CREDIT, "errors": {},
        "values": {"extension": "*", "period": fees.MONTHLY, "over_credit": fees.LOCK},
    }
    context.update(extra)
    return await render(request, "fees.html", context, status)


@router.get("/fees", response_class=HTMLResponse)
async def fee_page(request: Request, user: BillingUser) -> Response:
    return await _page(request)


@router.post("/fees", response_class=HTMLResponse)
async def add_fee(request: Request, user: BillingUser) -> Response:
    form = await request.form()
    values = {k: str(form.get(k) or "").strip() for k in FIELDS}
    try:
        await fees.add_fee(portal(request).ctx, values["extension"], values["amount"],
                           period=values["period"], over_credit=values["over_credit"],
                           name=values["name"], starts=values["starts"] or None)
    except (BadRequest, UnknownExtension) as exc:
        field = exc.field if exc.field in FIELDS else "form"
        return await _page(request, 400, values=values, errors={field: exc.message})
    return redirect("/fees", notice="fee_added")


@router.post("/fees/{fee_id}/remove")
async def remove_fee(request: Request, user: BillingUser, fee_id: str) -> Response:
    await fees.remove_fee(portal(request).ctx, fee_id)
    return redirect("/fees", notice="fee_removed")
