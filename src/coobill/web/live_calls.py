"""Resolving a flagged hold from the portal (the rule - only flagged holds, never a live
call's - is the service's: services/reservations.py)."""

from __future__ import annotations

from decimal import Decimal

from coobill.errors import BadRequest
from coobill.services import reservations
from coobill.services.context import BillingContext
from coobill.web.failures import NotFound


def parse_seconds(text: object) -> int:
    value = str(text if text is not None else "").strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 6:
        raise BadRequest(f"seconds: a whole number of seconds, 0 to "
                         f"{reservations.MAX_CHARGE_SECONDS}", field="seconds")
    return int(value)


async def release_hold(ctx: BillingContext, uniqueid: str) -> None:
    await reservations.release(ctx, uniqueid)


async def charge_hold(ctx: BillingContext, uniqueid: str, seconds: int) -> Decimal:
    """Charge the call `seconds` of talk; returns what it cost."""
    settlement = await reservations.charge(ctx, uniqueid, seconds)
    if settlement is None:
        raise NotFound(f"call {uniqueid} could not be settled", field="uniqueid")
    return settlement.cost
