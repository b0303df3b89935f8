"""Authorizing a call before it is dialled, and holding the funds it may spend.

However many calls an extension places at once, what they hold together never exceeds
balance + credit limit: each authorization locks the extension's row (FOR UPDATE on
PostgreSQL, BEGIN IMMEDIATE on SQLite), sees what the other live calls hold, and holds the
cost of the talk time it allows.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import delete, select

from coobill.money import ZERO
from coobill.rating import Tariff, cost, max_duration, minimum_to_connect
from coobill.services import ledger
from coobill.services.commands import AuthorizeCall, Reason, Verdict
from coobill.services.context import BillingContext
from coobill.services.rates import rate_book
from coobill.services.settings import read_settings
from coobill.storage.tables import Extension, Reservation
from coobill.storage.uow import UnitOfWork


def tariff_text(tariff: Tariff) -> str:
    return f"{tariff.initial_cost}/{tariff.initial_seconds}/{tariff.rate}/{tariff.period_seconds}"


def tariff_from_text(text: str) -> Tariff | None:
    if not text:
        return None
    initial_cost, initial_seconds, rate, period = text.split("/")
    return Tariff(Decimal(initial_cost), int(initial_seconds), Decimal(rate), int(period))


async def authorize_call(ctx: BillingContext, cmd: AuthorizeCall) -> Verdict:
    """ALLOW with a limit (and funds held), ALLOW unlimited (unbilled), or DENY with a reason."""
    async with ctx.uow() as uow:
        # A channel asking again replaces what it held before (it cannot dial twice at once).
        await uow.session.execute(delete(Reservation).where(Reservation.uniqueid == cmd.uniqueid))
        verdict = await _decide(ctx, uow, cmd)
        await uow.commit()
    return verdict


async def _decide(ctx: BillingContext, uow: UnitOfWork, cmd: AuthorizeCall) -> Verdict:
    settings = await read_settings(uow)
    local_now = settings.local(ctx.clock())
    policy = ctx.config.billing
    ext = (
        await uow.session.execute(
            select(Extension).where(Extension.number == cmd.extension).with_for_update()
        )
    ).scalar_one_or_none()

    if not settings.billing_enabled:
        return await _allow_unbilled(uow, cmd, ext, Reason.UNBILLED, local_now)
    if ext is None:
        if policy.unknown_extension == "deny":
            return Verdict.deny(Reason.UNKNOWN_EXTENSION)
        return await _allow_unbilled(uow, cmd, None, Reason.UNKNOWN_EXTENSION, local_now)
    if ext.locked:
        return Verdict.deny(Reason.LOCKED)
    if not ext.billing_enabled:
        return await _allow_unbilled(uow, cmd, ext, Reason.UNBILLED, local_now)

    rate = (await rate_book(ctx, uow)).select(ext.number, cmd.number, local_now.time())
    if rate is None:
        if policy.no_rate == "deny":
            return Verdict.deny(Reason.NO_RATE)
        return await _allow_unbilled(uow, cmd, ext, Reason.NO_RATE, local_now)

    funds = ext.balance + ext.credit_limit - await ledger.held_by_live_calls(uow, ext.id)
    tariff = rate.tariff
    if funds < minimum_to_connect(tariff):
        return Verdict(allowed=False, reason=Reason.NO_FUNDS, funds=funds, rate_id=rate.id)
    limit = max_duration(tariff, funds, policy.max_call_seconds)
    if limit <= 0:
        return Verdict(allowed=False, reason=Reason.NO_FUNDS, funds=funds, rate_id=rate.id)
    held = cost(tariff, limit)
    uow.session.add(
        Reservation(
            uniqueid=cmd.uniqueid, extension_id=ext.id, extension_number=ext.number,
            number=cmd.number, channel=cmd.channel[:128], amount=held, billed=True,
            limit_seconds=limit, rate_id=rate.id, tariff=tariff_text(tariff),
            rate_label=_label(rate.id, rate.prefix, rate.remark), created_at=local_now,
        )
    )
    return Verdict(
        allowed=True, reason=Reason.OK, limit_seconds=limit, held=held, rate_id=rate.id,
        funds=funds,
    )


async def _allow_unbilled(
    uow: UnitOfWork, cmd: AuthorizeCall, ext: Extension | None, reason: Reason, at: datetime
) -> Verdict:
    """Allow without a limit; a zero hold still tells settlement the call was gated."""
    uow.session.add(
        Reservation(
            uniqueid=cmd.uniqueid, extension_id=ext.id if ext else None,
            extension_number=cmd.extension, number=cmd.number, channel=cmd.channel[:128],
            amount=ZERO, billed=False, limit_seconds=None,
            created_at=at,
        )
    )
    return Verdict.allow_unlimited(reason)


def _label(rate_id: int, prefix: str, remark: str) -> str:
    return f"#{rate_id} {prefix or '(any)'}{' ' + remark if remark else ''}"[:255]
