"""Resolving a flagged hold: only holds that recovery flagged, never a live call's."""

from __future__ import annotations

from decimal import Decimal

from coobill.errors import BadRequest
from coobill.services import reservations
from coobill.services.context import BillingContext
from coobill.web.failures import NotFound


def parse_seconds(text: object) -> int:
    value = str(text if text is not None else "").strip()
    if not value.isdigit() or int(value) > 86_400:
        raise BadRequest("seconds: a whole number of seconds, 0 to 86400", field="seconds")
    return int(value)


async def require_flagged(ctx: BillingContext, uniqueid: str) -> None:
    flagged = await reservations.list_held(ctx, state=reservations.FLAGGED)
    if uniqueid not in {h.uniqueid for h in flagged}:
        raise NotFound(f"call {uniqueid} has no flagged hold to resolve", field="uniqueid")


async def release_hold(ctx: BillingContext, uniqueid: str) -> None:
    await require_flagged(ctx, uniqueid)
    await reservations.release(ctx, uniqueid)


async def charge_hold(ctx: BillingContext, uniqueid: str, seconds: int) -> Decimal:
    """Charge the call `seconds` of talk; returns what it cost."""
    await require_flagged(ctx, uniqueid)
    settlement = await reservations.charge(ctx, uniqueid, seconds)
    if settlement is None:
        raise NotFound(f"call {uniqueid} could not be settled", field="uniqueid")
    return settlement.cost
