"""Authorizing a call before it is dialled, and holding the funds it may spend.

However many calls an extension places at once, what they hold together never exceeds
balance + credit limit: the hold is taken by a conditional update (services/holds.py), so two
calls, or two daemons on one PostgreSQL, can never spend the same funds. This is the hot path:
one row read, one conditional update, one insert (the settings read once per transaction, the
rates from memory), run as one unit of work (UnitOfWorkFactory.run), which on SQLite shares
its transaction with the other calls queued at that moment (group commit).

A channel that asks again (a second Dial after `Dial(...,g)`) never loses the hold of its
earlier authorization: that hold is settled by its own Dial's evidence. The daemon tells the
gate, for each earlier authorization of the channel it made, the most talk time its Dial can
have had (`AuthorizeCall.earlier`), and that hold is lowered to what such a call can cost.

Each authorization is given a token before it writes anything: if the gate stops waiting (its
deadline) the token finds exactly the hold this authorization made, and only that one.
"""

from __future__ import annotations

import logging
import re
import secrets
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.orm import Session

from coobill.config import BillingConfig
from coobill.money import ZERO
from coobill.rating import Rate, RateBook
from coobill.services import caps, holds, low_balance
from coobill.services.commands import AuthorizeCall, Reason, Verdict
from coobill.services.context import BillingContext
from coobill.services.funds import funds, split_schedule
from coobill.services.hold_tariff import (
    hold_cost,
    rate_label,
    schedule_text,
    tariff_from_text,
    tariff_text,
)
from coobill.services.margin import below_margin, buy_rate
from coobill.services.rates import rate_book
from coobill.services.settings import BillingSettings, billing_settings
from coobill.storage import ledger_repo

log = logging.getLogger("coobill.gate")

# Funds that move between the read and the conditional update make the gate decide again;
# past this many tries it says no_funds rather than spin.
_TRIES = 5
# An extension's number: ASCII digits only (str.isdigit takes "８８" and "²").
_EXTENSION_NUMBER = re.compile(r"[0-9]+")


def new_token() -> str:
    return secrets.token_hex(12)


async def authorize_call(ctx: BillingContext, cmd: AuthorizeCall) -> Verdict:
    """ALLOW with a limit (and funds held), ALLOW unlimited (unbilled), or DENY with a reason."""
    token = new_token()
    return await ctx.uow.run(partial(_decide, ctx, cmd, token), undo=partial(_undo, ctx, cmd),
                            short=True)


def _undo(ctx: BillingContext, cmd: AuthorizeCall, session: Session, verdict: Verdict) -> None:
    """The gate gave up waiting (its deadline) and told the channel its on_error verdict: the
    hold this authorization committed late is not wanted. Only its own hold is touched."""
    if verdict.token is None:
        return
    undone = holds.undo(session, verdict.token, at=billing_settings(session).local(ctx.clock()))
    if undone is not None:
        log.warning("gate.hold_undone uniqueid=%s ext=%s held=%s reason=answered_on_error",
                    cmd.uniqueid, cmd.extension, undone.amount)


def _decide(
    ctx: BillingContext, cmd: AuthorizeCall, token: str, session: Session,
) -> Verdict:
    settings = billing_settings(session)
    local_now = settings.local(ctx.clock())
    policy = ctx.config.billing
    pbx = ctx.config.pbx.identity()
    _lower_earlier_holds(session, cmd, pbx)

    for _ in range(_TRIES):
        ext = ledger_repo.gate_view(session, cmd.extension)
        answer = _before_rating(session, cmd, ext, settings, policy, local_now, pbx, token)
        if answer is not None:
            return answer

        book = rate_book(ctx, session, settings.rates_version)
        rate = book.select(ext.number, cmd.number, local_now)
        if rate is None:
            if policy.no_rate == "deny":
                return Verdict.deny(Reason.NO_RATE)
            return _allow_unbilled(session, cmd, ext, Reason.NO_RATE, local_now, pbx, token)

        floor = settings.margin_floor(policy.min_margin)
        if floor is not None and below_margin(
                rate, buy_rate(ctx, session, settings.rates_version, cmd.trunk, cmd.number,
                               local_now), floor):
            return Verdict(allowed=False, reason=Reason.NO_MARGIN, rate_id=rate.id)

        answer = _hold_billed(ctx, session, cmd, ext, settings, book, rate, local_now, pbx,
                              token)
        if answer is not None:
            return answer
        # None: the funds moved under us between the read and the hold: read them again
    return Verdict(allowed=False, reason=Reason.NO_FUNDS)


def _before_rating(
    session: Session, cmd: AuthorizeCall, ext: Any,
    settings: BillingSettings, policy: BillingConfig, local_now: datetime, pbx: str, token: str,
) -> Verdict | None:
    """The answer that needs no rate (billing off, an unknown or locked extension), or None
    when the call is to be rated."""
    if not settings.billing_enabled:
        return _allow_unbilled(session, cmd, ext, Reason.UNBILLED, local_now, pbx, token)
    if ext is None:
        if not _may_call_unknown(cmd, policy.unknown_extension):
            return Verdict.deny(Reason.UNKNOWN_EXTENSION)
        return _allow_unbilled(session, cmd, None, Reason.UNKNOWN_EXTENSION, local_now, pbx,
                               token)
    if ext.locked:
        return Verdict.deny(Reason.LOCKED)
    if not ext.billing_enabled:
        return _allow_unbilled(session, cmd, ext, Reason.UNBILLED, local_now, pbx, token)
    return None


def _hold_billed(
    ctx: BillingContext, session: Session, cmd: AuthorizeCall, ext: Any,
    settings: BillingSettings, book: RateBook, rate: Rate, local_now: datetime, pbx: str,
    token: str,
) -> Verdict | None:
    """A rated call: its allowance within funds and caps, and the hold for it; None when the
    funds moved between the read and the conditional update (the caller reads again)."""
    policy = ctx.config.billing
    tariff = rate.tariff
    applying = caps.caps_of(ext, settings)
    schedule = split_schedule(book, rate, ext.number, cmd.number, settings.local,
                              ctx.clock(), policy.max_call_seconds)
    decided = caps.capped_allowance(
        tariff, funds(ext.balance, ext.credit_limit, ext.reserved), applying, ext,
        local_now, policy.max_call_seconds, schedule)
    decision = decided.allowance
    available, limit, held = decision.funds, decision.limit_seconds, decision.held
    if not decision.allowed:
        return Verdict(allowed=False, reason=decided.reason, funds=available,
                       rate_id=rate.id)
    hold_id = holds.take(
        session, extension_id=ext.id, amount=held, caps=_period_caps(applying, local_now),
        token=token, uniqueid=cmd.uniqueid,
        extension_number=ext.number, number=cmd.number, channel=cmd.channel[:128],
        billed=True, limit_seconds=limit, rate_id=rate.id, tariff=tariff_text(tariff),
        tariff_schedule=schedule_text(schedule) if schedule else "",
        rate_label=rate_label(rate.id, rate.prefix, rate.remark), pbx=pbx,
        created_at=local_now,
    )
    if hold_id is None:
        return None
    low = low_balance.is_low(ext.balance, ext.credit_limit, low_balance.threshold_of(
        ext.low_balance_threshold, settings))
    return Verdict(
        allowed=True, reason=Reason.OK, limit_seconds=limit, held=held, rate_id=rate.id,
        funds=available, token=token, low_balance=low,
    )


def _period_caps(applying: caps.Caps, at: datetime) -> holds.PeriodCaps | None:
    """What the hold's conditional update checks besides the funds (None: no period cap, the
    plain funds check)."""
    if not applying.periodic:
        return None
    return holds.PeriodCaps(caps.day_of(at), applying.daily, caps.month_of(at), applying.monthly)


def _may_call_unknown(cmd: AuthorizeCall, policy: str) -> bool:
    """An extension the ledger does not know calls free only when it is a real phone of the
    PBX (its channel's endpoint, named as an extension is: ASCII digits) and the policy
    allows it. A caller ID (a Local channel) names whatever its setter chose, and an endpoint
    with another name (a trunk, `carrier`) is no extension at all: both are refused."""
    return (policy == "allow_free" and cmd.payer_source == "endpoint"
            and _EXTENSION_NUMBER.fullmatch(cmd.extension) is not None)


def _lower_earlier_holds(session: Session, cmd: AuthorizeCall, pbx: str) -> None:
    """The channel asks again, so its earlier Dials are over: each earlier hold of it keeps
    only what a call of at most the talk time the daemon says it can have had costs (capped
    by its limit); its own evidence settles it later."""
    for earlier, talk_seconds in cmd.earlier:
        row = ledger_repo.open_hold_of_channel(session, earlier, cmd.uniqueid, pbx)
        if row is None:
            continue
        tariff = tariff_from_text(row.tariff)
        if tariff is None:
            continue  # an unbilled authorization holds nothing
        talk = max(talk_seconds, 0)
        if row.limit_seconds is not None:
            talk = min(talk, row.limit_seconds)
        kept = hold_cost(tariff, row.tariff_schedule, talk)
        given_back = holds.shrink(session, row.id, was=row.amount, to=kept)
        if given_back:
            log.info("gate.hold_lowered uniqueid=%s hold=%s kept=%s released=%s",
                     cmd.uniqueid, row.id, kept, given_back)


def _allow_unbilled(
    session: Session, cmd: AuthorizeCall, ext: object | None, reason: Reason, at: datetime,
    pbx: str, token: str,
) -> Verdict:
    """Allow without a limit; a zero hold still tells settlement the call was gated."""
    holds.take(
        session, extension_id=getattr(ext, "id", None), amount=ZERO, token=token,
        uniqueid=cmd.uniqueid, extension_number=cmd.extension, number=cmd.number,
        channel=cmd.channel[:128], billed=False, limit_seconds=None, rate_id=None, tariff="",
        tariff_schedule="", rate_label="", pbx=pbx, created_at=at,
    )
    return Verdict(allowed=True, reason=reason, token=token)


__all__ = ["BillingSettings", "authorize_call", "rate_label", "tariff_from_text",
           "tariff_text"]
