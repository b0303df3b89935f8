"""Settings: billing on/off, the currency (and its symbol), the PBX's time zone, the account
controls' defaults, the minimum margin."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from coobill.errors import BadRequest
from coobill.services import settings as settings_service
from coobill.services.settings import CURRENCY_SYMBOLS
from coobill.web.auth import BillingUser, check_csrf, portal
from coobill.web.render import redirect, render

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])

CURRENCIES = (*CURRENCY_SYMBOLS, "OTHER")


@router.get("/settings", response_class=HTMLResponse)
async def settings_form(request: Request, user: BillingUser) -> Response:
    current = await settings_service.billing_settings(portal(request).ctx)
    currency = current.currency if current.currency in CURRENCY_SYMBOLS else "OTHER"
    return await render(
        request,
        "settings.html",
        {
            "currencies": CURRENCIES,
            "values": {
                "billing": "on" if current.billing_enabled else "",
                "currency": currency,
                "symbol": current.currency_symbol,
                "timezone": current.timezone,
                **current.controls(),
                "min_margin": "" if current.min_margin is None else str(current.min_margin),
            },
        },
    )


@router.post("/settings", response_class=HTMLResponse)
async def change_settings(request: Request, user: BillingUser) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    try:
        currency = form.get("currency", "")
        await settings_service.change_settings(
            portal(request).ctx,
            billing="on" if form.get("billing") == "on" else "off",
            currency=currency,
            symbol=settings_service.symbol_chosen(currency, form.get("symbol", "")),
            timezone=form.get("timezone", "").strip() or None,
            controls={name: form.get(name, "") for name in settings_service.CONTROL_DEFAULTS},
            min_margin=form.get("min_margin", ""),
        )
    except BadRequest as exc:
        return await render(
            request,
            "settings.html",
            {
                "currencies": CURRENCIES,
                "values": form,
                "errors": {exc.field or "form": exc.message},
            },
            400,
        )
    return redirect("/settings", notice="saved")
