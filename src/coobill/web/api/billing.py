"""Settings and live calls over the API: billing on/off, currency, the controls' defaults
and the minimum margin; holds and resolving
the flagged ones."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Depends, Request

from coobill.money import fmt
from coobill.services import reservations
from coobill.services import settings as settings_service
from coobill.web.api.schemas import ChargeIn, ChargeOut, HeldOut, SettingsIn, SettingsOut
from coobill.web.auth import BillingUser, check_csrf, portal
from coobill.web.records import stamp

router = APIRouter(
    prefix="/api", tags=["settings and live calls"], dependencies=[Depends(check_csrf)]
)


def settings_json(current: settings_service.BillingSettings) -> SettingsOut:
    margin = "" if current.min_margin is None else str(current.min_margin)
    return SettingsOut.model_validate({**current.as_dict(), **current.controls(),
                                       "min_margin": margin})


@router.get("/settings")
async def show_settings(request: Request, user: BillingUser) -> SettingsOut:
    return settings_json(await settings_service.billing_settings(portal(request).ctx))


@router.post("/settings", responses={400: {}})
async def change_settings(body: SettingsIn, request: Request, user: BillingUser) -> SettingsOut:
    """Fields left out stay as they are. A known currency takes its own symbol (US$, ¥, €,
    £, ₫); OTHER needs `symbol`."""
    arguments = {"billing": body.billing, "timezone": body.timezone}
    if body.currency is not None:
        arguments |= {"currency": body.currency,
                      "symbol": settings_service.symbol_chosen(body.currency, body.symbol or "")}
    elif body.symbol is not None:
        arguments["symbol"] = body.symbol
    controls: dict[str, str | None] = {
        name: None if getattr(body, name) is None else str(getattr(body, name))
        for name in settings_service.CONTROL_DEFAULTS}
    margin = None if body.min_margin is None else str(body.min_margin)
    return settings_json(await settings_service.change_settings(
        portal(request).ctx, **arguments, controls=controls, min_margin=margin))


@router.get("/live")
async def live_calls(request: Request, user: BillingUser) -> list[HeldOut]:
    """Funds held by calls in progress; state "flagged" marks a hold whose call ended unseen
    (found by recovery), to be released or charged."""
    return [
        HeldOut.model_validate(
            {
                **asdict(h),
                "held": fmt(h.amount),
                "since": stamp(h.since),
            }
        )
        for h in await reservations.list_held(portal(request).ctx)
    ]


@router.post("/live/{uniqueid}/release", status_code=204, responses={404: {}})
async def release(uniqueid: str, request: Request, user: BillingUser) -> None:
    """Release a flagged hold without charging."""
    await reservations.release(portal(request).ctx, uniqueid)


@router.post("/live/{uniqueid}/charge", responses={404: {}})
async def charge(uniqueid: str, body: ChargeIn, request: Request, user: BillingUser) -> ChargeOut:
    """Settle a flagged hold by charging `seconds` of talk at the price it was allowed at."""
    settlement = await reservations.charge(portal(request).ctx, uniqueid, body.seconds)
    return ChargeOut(uniqueid=uniqueid, cost=fmt(settlement.cost))
