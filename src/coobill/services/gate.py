"""Authorizing a call before it is dialled, and holding the funds it may spend.

However many calls an extension places at once, what they hold together never exceeds
balance + credit limit: the hold is taken by a conditional update
(`reserved = reserved + h WHERE balance + credit - reserved >= h`), so two calls, or two
daemons on one PostgreSQL, can never spend the same funds. This is the hot path: a delete
of any earlier hold of the channel, one row read, one conditional update, one insert (the
settings read once per transaction, the rates from memory), run as one unit of work
(UnitOfWorkFactory.run), which on SQLite shares its transaction with the other calls queued
at that moment (group commit).
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from functools import partial

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from coobill.money import ZERO
from coobill.rating import Tariff, cost, max_duration, minimum_to_connect
from coobill.services import ledger
from coobill.services.commands import AuthorizeCall, Reason, Verdict
from coobill.services.context import BillingContext
from coobill.services.rates import rate_book
from coobill.services.settings import BillingSettings, settings_now
from coobill.storage.fast import execute
from coobill.storage.tables import Extension, Reservation, table

log = logging.getLogger("coobill.gate")

# Funds that move between the read and the conditional update make the gate decide again;
# past this many tries it says no_funds rather than spin.
_TRIES = 5


def tariff_text(tariff: Tariff) -> str:
    return f"{tariff.initial_cost}/{tariff.initial_seconds}/{tariff.rate}/{tariff.period_seconds}"


def tariff_from_text(text: str) -> Tariff | None:
    if not text:
        return None
    initial_cost, initial_seconds, rate, period = text.split("/")
    return Tariff(Decimal(initial_cost), int(initial_seconds), Decimal(rate), int(period))


async def authorize_call(ctx: BillingContext, cmd: AuthorizeCall) -> Verdict:
    """ALLOW with a limit (and funds held), ALLOW unlimited (unbilled), or DENY with a reason."""
    try:
        return await ctx.uow.run(partial(_decide, ctx, cmd), undo=partial(_undo, cmd))
    except IntegrityError:
        # The same channel asked twice at the same instant (another daemon): decide again,
        # now that its first hold is visible to replace.
        return await ctx.uow.run(partial(_decide, ctx, cmd), undo=partial(_undo, cmd))




def _undo(cmd: AuthorizeCall, session: Session, verdict: Verdict) -> None:
    """The gate gave up waiting (its deadline) and told the channel its on_error verdict
    (DENY, or ALLOW unlimited): the hold this authorization committed late is not wanted."""
    if verdict.allowed:
        _drop_hold(session, cmd.uniqueid)
        log.warning("gate.hold_undone uniqueid=%s ext=%s held=%s reason=answered_on_error",
                    cmd.uniqueid, cmd.extension, verdict.held)


_reservation = table(Reservation)
_DROP_HOLD = (
    delete(_reservation)
    .where(_reservation.c.uniqueid == bindparam("uniqueid"))
    .returning(_reservation.c.extension_id, _reservation.c.amount)
)


def _drop_hold(session: Session, uniqueid: str) -> None:
    """A channel asking again gives back what it held: it cannot dial twice at once."""
    previous = execute(session, _DROP_HOLD, {"uniqueid": uniqueid}).first()
    if previous is not None:
        ledger.release_hold(session, previous.extension_id, previous.amount)


_extension = table(Extension)
_EXTENSION_ROW = select(
    _extension.c.id, _extension.c.number, _extension.c.billing_enabled, _extension.c.locked,
    _extension.c.balance, _extension.c.credit_limit, _extension.c.reserved,
).where(_extension.c.number == bindparam("number"))
_NEW_HOLD = insert(table(Reservation))


def _decide(ctx: BillingContext, cmd: AuthorizeCall, session: Session) -> Verdict:
    settings = settings_now(session)
    local_now = settings.local(ctx.clock())
    policy = ctx.config.billing
    pbx = ctx.config.pbx.identity()
    _drop_hold(session, cmd.uniqueid)

    for _ in range(_TRIES):
        ext = execute(session, _EXTENSION_ROW, {"number": cmd.extension}).first()
        if not settings.billing_enabled:
            return _allow_unbilled(session, cmd, ext, Reason.UNBILLED, local_now, pbx)
        if ext is None:
            if policy.unknown_extension == "deny":
                return Verdict.deny(Reason.UNKNOWN_EXTENSION)
            return _allow_unbilled(session, cmd, None, Reason.UNKNOWN_EXTENSION, local_now, pbx)
        if ext.locked:
            return Verdict.deny(Reason.LOCKED)
        if not ext.billing_enabled:
            return _allow_unbilled(session, cmd, ext, Reason.UNBILLED, local_now, pbx)

        book = rate_book(ctx, session, settings.rates_version)
        rate = book.select(ext.number, cmd.number, local_now.time())
        if rate is None:
            if policy.no_rate == "deny":
                return Verdict.deny(Reason.NO_RATE)
            return _allow_unbilled(session, cmd, ext, Reason.NO_RATE, local_now, pbx)

        funds = ext.balance + ext.credit_limit - ext.reserved
        tariff = rate.tariff
        limit = max_duration(tariff, funds, policy.max_call_seconds)
        if funds < minimum_to_connect(tariff) or limit <= 0:
            return Verdict(allowed=False, reason=Reason.NO_FUNDS, funds=funds, rate_id=rate.id)
        held = cost(tariff, limit)
        if not ledger.hold(session, ext.id, held):
            continue  # the funds moved under us: read them again
        execute(session, _NEW_HOLD, {
            "uniqueid": cmd.uniqueid, "extension_id": ext.id, "extension_number": ext.number,
            "number": cmd.number, "channel": cmd.channel[:128], "amount": held, "billed": True,
            "limit_seconds": limit, "rate_id": rate.id, "tariff": tariff_text(tariff),
            "rate_label": rate_label(rate.id, rate.prefix, rate.remark), "state": "held", "pbx": pbx,
            "note": "", "created_at": local_now,
        })
        return Verdict(
            allowed=True, reason=Reason.OK, limit_seconds=limit, held=held, rate_id=rate.id,
            funds=funds,
        )
    return Verdict(allowed=False, reason=Reason.NO_FUNDS)


def _allow_unbilled(
    session: Session, cmd: AuthorizeCall, ext: object | None, reason: Reason, at: datetime,
    pbx: str,
) -> Verdict:
    """Allow without a limit; a zero hold still tells settlement the call was gated."""
    execute(session, _NEW_HOLD, {
        "uniqueid": cmd.uniqueid, "extension_id": getattr(ext, "id", None),
        "extension_number": cmd.extension, "number": cmd.number, "channel": cmd.channel[:128],
        "amount": ZERO, "billed": False, "limit_seconds": None, "rate_id": None, "tariff": "",
        "rate_label": "", "state": "held", "note": "", "pbx": pbx, "created_at": at,
    })
    return Verdict.allow_unlimited(reason)


def rate_label(rate_id: int, prefix: str, remark: str) -> str:
    return f"#{rate_id} {prefix or '(any)'}{' ' + remark if remark else ''}"[:255]


__all__ = ["BillingSettings", "authorize_call", "rate_label", "tariff_from_text", "tariff_text"]
