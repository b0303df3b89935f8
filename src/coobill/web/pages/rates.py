"""Rates: the list with a quote box, add, edit, enable/disable and delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from coobill.errors import BadRequest, UnknownExtension
from coobill.services import extension_listing, rates
from coobill.web.auth import BillingUser, check_csrf, portal
from coobill.web.rate_form import DAYS, fields_from_form, form_values, rate_changes
from coobill.web.render import redirect, render

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])

NEW_RATE = {
    "length": "0",
    "initial_cost": "0",
    "initial_time": "0",
    "period": "60",
    "start": "00:00",
    "end": "23:59",
    "enabled": "on",
    "holidays": "any",
}


async def _quote(request: Request, extension: str, number: str, at: str) -> dict[str, Any]:
    if not (extension or number):
        return {}
    try:
        return {"quote": await rates.quote(portal(request).ctx, extension.strip(), number.strip(),
                                           at=at.strip() or None)}
    except (BadRequest, UnknownExtension) as exc:
        field = {"number": "quote_number", "at": "quote_at"}.get(exc.field or "",
                                                                  "quote_extension")
        return {"quote_errors": {field: exc.message}}


@router.get("/rates", response_class=HTMLResponse)
async def rate_list(
    request: Request,
    user: BillingUser,
    quote_extension: str = "",
    quote_number: str = "",
    quote_at: str = "",
) -> Response:
    return await render(
        request,
        "rates.html",
        {
            "rates": await rates.list_rates(portal(request).ctx),
            "quote_values": {"quote_extension": quote_extension, "quote_number": quote_number,
                             "quote_at": quote_at},
            **await _quote(request, quote_extension, quote_number, quote_at),
        },
    )


async def _rate_form(
    request: Request,
    rate_id: int | None,
    values: dict[str, Any],
    chosen: list[str],
    errors: dict[str, str] | None = None,
) -> Response:
    known, _ = await extension_listing.list_extensions(portal(request).ctx)
    return await render(
        request,
        "rate_form.html",
        {
            "rate_id": rate_id,
            "values": values,
            "chosen": chosen,
            "known": known,
            "errors": errors or {},
            "day_names": DAYS,
        },
        400 if errors else 200,
    )


@router.get("/rates/new", response_class=HTMLResponse)
async def new_rate_form(request: Request, user: BillingUser) -> Response:
    return await _rate_form(request, None, dict(NEW_RATE), ["*"])


@router.post("/rates/new", response_class=HTMLResponse)
async def add_rate(request: Request, user: BillingUser) -> Response:
    return await _save(request, None)


@router.get("/rates/{rate_id}/edit", response_class=HTMLResponse)
async def edit_rate_form(request: Request, user: BillingUser, rate_id: int) -> Response:
    view = await rates.get_rate(portal(request).ctx, rate_id)
    return await _rate_form(
        request, rate_id, form_values(view.fields), list(view.fields.extensions)
    )


@router.post("/rates/{rate_id}/edit", response_class=HTMLResponse)
async def edit_rate(request: Request, user: BillingUser, rate_id: int) -> Response:
    await rates.get_rate(portal(request).ctx, rate_id)  # 404 before reading the form
    return await _save(request, rate_id)


async def _save(request: Request, rate_id: int | None) -> Response:
    ctx = portal(request).ctx
    form = await request.form()
    values = {k: str(v) for k, v in form.items() if k not in ("extensions", "days")}
    values["days"] = ",".join(str(d) for d in form.getlist("days"))
    chosen = [str(e) for e in form.getlist("extensions")]
    try:
        fields = fields_from_form(values, chosen)
        if rate_id is None:
            await rates.add_rate(ctx, fields)
        else:
            await rates.edit_rate(ctx, rate_id, **rate_changes(fields))
    except BadRequest as exc:
        return await _rate_form(
            request, rate_id, values, chosen, {exc.field or "form": exc.message}
        )
    return redirect("/rates", notice="rate_added" if rate_id is None else "rate_saved")


@router.post("/rates/{rate_id}/toggle")
async def toggle_rate(request: Request, user: BillingUser, rate_id: int) -> Response:
    ctx = portal(request).ctx
    view = await rates.get_rate(ctx, rate_id)
    await rates.edit_rate(ctx, rate_id, enabled=not view.fields.enabled)
    return redirect("/rates", notice="rate_saved")


@router.post("/rates/{rate_id}/delete")
async def delete_rate(request: Request, user: BillingUser, rate_id: int) -> Response:
    await rates.delete_rate(portal(request).ctx, rate_id)
    return redirect("/rates", notice="rate_deleted")
