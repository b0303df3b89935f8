"""Settling a channel when it ends: record each Dial, debit the answered ones, close its holds.

One transaction per channel:
- Each answered Dial is one call record and one debit, at the tariff of the authorization it
  went out under (its hold), its billable seconds capped at that hold's limit (Dial's `L()`
  cut the dialled party there; more would be the caller's own earlier answer, ASTERISK.md §8).
  A channel none of whose Dials was answered gets one record at cost 0.
- The Dial's hold is known by the token the daemon saw it dial under; without it (the Dial
  was not seen: a restart, an AMI gap) the channel's newest hold for the same number, else its
  newest hold.
- Holds a Dial went out under are settled; the others are released when the evidence covers
  every Dial of the channel, and flagged otherwise (SettleChannel.leftover).
- A Dial of no hold at all did not pass the gate: recorded, flagged ungated, charged at the
  rate in force when it was answered (if it went out: not to a phone, not to an extension).

Exactly once is the database's job: a call record is unique on (PBX, uniqueid, leg), the
channel's holds are read FOR UPDATE and closed by conditional updates (services/holds.py), and
a debit refers to its record. Settling a channel again records and debits nothing twice.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import partial

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from coobill.money import ZERO
from coobill.rating import Tariff
from coobill.services import holds, ledger, low_balance, outbox
from coobill.services.commands import (
    DialOutcome,
    Disposition,
    SettleCall,
    SettleChannel,
    Settlement,
)
from coobill.services.context import BillingContext
from coobill.services.hold_tariff import hold_cost, rate_label, tariff_from_text
from coobill.services.margin import buy_cost
from coobill.services.rates import rate_book
from coobill.services.settings import BillingSettings, billing_settings
from coobill.storage import ledger_repo

log = logging.getLogger("coobill.settlement")

async def settle_channel(ctx: BillingContext, cmd: SettleChannel) -> list[Settlement]:
    """Settle one ended channel; one Settlement per call record it made (none for a call
    that was not ours to record, or for a repeat)."""
    try:
        return await ctx.uow.run(partial(_settle, ctx, cmd))
    except IntegrityError:
        # Settled at this very moment by someone else (a second daemon, a duplicate racing
        # us): run again, to record what they did not.
        return await ctx.uow.run(partial(_settle, ctx, cmd))


async def settle_call(ctx: BillingContext, cmd: SettleCall) -> Settlement | None:
    """Settle the one Dial of a channel. None for a call that is not ours to record (an
    internal call that never passed the gate); `debited` False for a repeat."""
    done = await settle_channel(ctx, cmd.as_channel())
    if done:
        return done[0]
    cost = await _recorded_cost(ctx, cmd)
    return None if cost is None else Settlement(cmd.uniqueid, cost, debited=False)


async def _recorded_cost(ctx: BillingContext, cmd: SettleCall) -> Decimal | None:
    """What the call was charged when it was settled before (None: it never was)."""
    async with ctx.uow.read() as uow:
        legs, legacy = await ledger_repo.recorded_costs(uow.session, ctx.config.pbx.identity(),
                                                        cmd.uniqueid)
    if not legs and legacy is not None:
        return legacy
    return legs.get(cmd.leg, next(iter(legs.values()), None))


@dataclass(frozen=True, slots=True)
class _Hold:
    id: int
    token: str
    extension_id: int | None
    extension_number: str
    number: str
    amount: Decimal
    billed: bool
    limit_seconds: int | None
    tariff: str
    tariff_schedule: str
    rate_id: int | None
    rate_label: str
    state: str
    created_at: datetime  # PBX local time, as the gate took it


def _settle(ctx: BillingContext, cmd: SettleChannel, session: Session) -> list[Settlement]:
    settings = billing_settings(session)
    pbx = cmd.pbx if cmd.pbx is not None else ctx.config.pbx.identity()
    channel_holds = [_Hold(**row._asdict())
                     for row in ledger_repo.channel_holds(session, pbx, cmd.uniqueid)]
    earlier, settled_before_the_upgrade = ledger_repo.recorded_legs(session, pbx, cmd.uniqueid)
    recorded = {row.leg for row in earlier}
    if settled_before_the_upgrade:
        return []
    now = settings.local(ctx.clock())
    used: set[int] = set()
    done: list[Settlement] = []
    # A hold's limit is what its Dials may talk together: a dialplan that dials twice on one
    # authorization (the second Dial reusing ${COOBILL_DIAL_OPTIONS}) cannot double it.
    # So is what an earlier settlement of the channel recorded under it (late evidence of a
    # Dial a first settlement did not know cannot take the hold past its limit).
    budget = {h.id: h.limit_seconds for h in channel_holds if h.limit_seconds is not None}
    for row in earlier:
        if row.reservation_id in budget:
            budget[row.reservation_id] = max(budget[row.reservation_id] - row.billable_seconds, 0)
    claimed = {d.authorization for d in cmd.dials if d.authorization is not None}
    for dial in cmd.records():
        hold = _hold_of(dial, channel_holds, claimed, _local(settings, dial.start))
        if hold is not None and hold.state in holds.OPEN:
            used.add(hold.id)
        if dial.leg in recorded:
            continue  # settled before: nothing twice
        allowed = budget.get(hold.id) if hold is not None else None
        settled = _record(ctx, session, settings, cmd, dial, hold, pbx, now, allowed)
        if hold is not None and hold.id in budget and settled is not None:
            budget[hold.id] = max(budget[hold.id] - settled.billable_seconds, 0)
        if settled is not None:
            recorded.add(dial.leg)
            done.append(settled)
    _close_holds(ctx, session, cmd, channel_holds, used, now)
    return done


def _close_holds(ctx: BillingContext, session: Session, cmd: SettleChannel,
                 channel_holds: list[_Hold], used: set[int], now: datetime) -> None:
    """Each open hold of the channel: settled if a Dial went out under it, else as the
    evidence says (`cmd.leftover`): released (no Dial at all) or flagged (unknown)."""
    for hold in channel_holds:
        if hold.state not in holds.OPEN:
            continue
        if hold.id in used:
            holds.close(session, hold.id, holds.SETTLED, at=now)
        elif cmd.leftover == "release":
            holds.close(session, hold.id, holds.RELEASED, at=now, note="no Dial went out under it")
            log.info("settlement.released uniqueid=%s hold=%s ext=%s held=%s reason=no_dial",
                     cmd.uniqueid, hold.id, hold.extension_number, hold.amount)
        elif cmd.leftover == "flag" and hold.state == holds.HELD:
            note = cmd.note or "its channel ended and no evidence shows what it cost"
            if holds.flag(session, hold.id, note):
                outbox.publish(ctx, session, outbox.HOLD_FLAGGED, hold.extension_number, {
                    "uniqueid": cmd.uniqueid, "hold": hold.id, "number": hold.number,
                    "held": hold.amount, "note": note})
            log.warning("settlement.flagged uniqueid=%s hold=%s ext=%s held=%s reason=%r",
                        cmd.uniqueid, hold.id, hold.extension_number, hold.amount, note)


def _hold_of(dial: DialOutcome, channel_holds: list[_Hold], claimed: set[str],
             started: datetime | None) -> _Hold | None:
    """The authorization this Dial went out under: the one the daemon saw; else, of the holds
    taken by the time it started (`started`, PBX local time: a channel asks the gate before
    each Dial, so a later hold is a later Dial's), the newest open one no other Dial of the
    channel was seen under, for the number it dialled, else the newest such; else the newest
    open one, else the newest at all (a closed one: the Dial is late evidence of a call
    already resolved)."""
    if not channel_holds:
        return None
    if dial.authorization is not None:
        for hold in channel_holds:
            if hold.token == dial.authorization:
                return hold
    usable = [h for h in channel_holds if h.state != holds.UNDONE]
    if started is not None:
        # Whole seconds: a Cdr's start is truncated to the second, the hold's time is not.
        before = [h for h in usable if h.created_at.replace(microsecond=0) <= started]
        usable = before or usable
    open_ = [h for h in usable if h.state in holds.OPEN]
    free = [h for h in open_ if h.token not in claimed]
    for candidates in ([h for h in free if h.number == dial.dialled_number], free, open_, usable):
        if candidates:
            return candidates[-1]
    return None


@dataclass(frozen=True, slots=True)
class _Price:
    """Who pays for one Dial, for how many seconds, and at what: its hold's tariff, or the
    rate in force for a Dial that passed no gate."""

    extension_id: int | None
    extension_number: str
    billsec: int
    tariff: Tariff | None = None
    rate_id: int | None = None
    label: str = ""
    schedule: str = ""  # a split rate's hold keeps its schedule: charged by the gate's walk
    charge: bool = True


def _held_price(cmd: SettleChannel, dial: DialOutcome, hold: _Hold, billsec: int,
                allowed: int | None) -> _Price:
    """A Dial under a hold: at its tariff, never beyond what its limit has left."""
    if allowed is not None and billsec > allowed:
        log.warning("settlement.beyond_limit uniqueid=%s leg=%s billsec=%s limit=%s "
                    "left_of_it=%s", cmd.uniqueid, dial.leg, billsec, hold.limit_seconds, allowed)
        billsec = allowed
    charge = hold.state != holds.RELEASED
    if not charge:
        # A billing user (or the evidence then) said this authorization cost nothing: the
        # late Dial is recorded, not charged.
        log.warning("settlement.after_release uniqueid=%s hold=%s leg=%s billsec=%s",
                    cmd.uniqueid, hold.id, dial.leg, billsec)
    if not hold.billed:
        return _Price(hold.extension_id, hold.extension_number, billsec, charge=charge)
    return _Price(hold.extension_id, hold.extension_number, billsec,
                  tariff_from_text(hold.tariff), hold.rate_id, hold.rate_label,
                  hold.tariff_schedule, charge)


def _ungated_price(ctx: BillingContext, session: Session, settings: BillingSettings,
                   cmd: SettleChannel, dial: DialOutcome, billsec: int) -> _Price | None:
    """A Dial of no hold: None if it did not go out (to a phone, to an extension's number);
    billed only to a known extension with billing on - an unknown one calls free (as the
    gate lets it) and has no balance to debit."""
    if _is_internal(session, dial, ctx.config.ami.phone_pattern):
        return None
    ext = ledger_repo.billing_of(session, cmd.caller_extension)
    if ext is None:
        return _Price(None, cmd.caller_extension, billsec)
    if not (settings.billing_enabled and ext.billing_enabled):
        return _Price(ext.id, cmd.caller_extension, billsec)
    when = _local(settings, dial.answer or dial.start or dial.end)
    tariff, rate_id, label = _rate_for_ungated(ctx, session, cmd, settings, when, dial)
    return _Price(ext.id, cmd.caller_extension, billsec, tariff, rate_id, label)


def _record(
    ctx: BillingContext, session: Session, settings: BillingSettings, cmd: SettleChannel,
    dial: DialOutcome, hold: _Hold | None, pbx: str, now: datetime, allowed: int | None,
) -> Settlement | None:
    """Record one Dial and debit what it cost (one call record, at most one ledger entry)."""
    start, answer, end = (_local(settings, t) for t in (dial.start, dial.answer, dial.end))
    answered = dial.disposition == Disposition.ANSWERED
    billsec = max(dial.billable_seconds, 0) if answered else 0
    price = _held_price(cmd, dial, hold, billsec, allowed) if hold is not None \
        else _ungated_price(ctx, session, settings, cmd, dial, billsec)
    if price is None:
        return None
    billsec, tariff = price.billsec, price.tariff
    amount = hold_cost(tariff, price.schedule, billsec) if answered and price.charge else ZERO
    bought = buy_cost(ctx, session, settings.rates_version, dial.trunk, dial.dialled_number,
                      start or answer, billsec) if answered else None
    call_id = ledger_repo.record_call(session, {
        "pbx": pbx, "uniqueid": cmd.uniqueid[:64], "leg": dial.leg[:128],
        # What a PBX sends is clipped to the columns: a forwarded call's long caller ID must
        # not make its settlement fail forever.
        "caller_extension": price.extension_number[:32], "caller_name": cmd.caller_name[:128],
        "dialled_number": dial.dialled_number[:64], "start": start, "answer": answer,
        "end": end, "billable_seconds": billsec, "trunk": (dial.trunk or "")[:64],
        "rate_id": price.rate_id if tariff is not None else None,
        "rate_label": price.label if tariff is not None else "", "cost": amount, "buy_cost": bought,
        "disposition": str(dial.disposition), "gated": hold is not None,
        "evidence": dial.evidence, "reservation_id": hold.id if hold is not None else None,
    })
    balance_after = None
    if price.extension_id is not None and amount:
        posted = ledger.post_entry(
            session, extension_id=price.extension_id, kind=ledger.CALL_DEBIT, amount=-amount,
            at=end or now, reference=f"call:{call_id}",
        )
        balance_after = posted.after
        low_balance.check(ctx, session, price.extension_id, end or now, view=posted.extension)
    outbox.publish(ctx, session, outbox.CALL_SETTLED, price.extension_number, {
        "uniqueid": cmd.uniqueid, "leg": dial.leg, "number": dial.dialled_number,
        "disposition": str(dial.disposition), "billable_seconds": billsec, "cost": amount,
        "balance_after": balance_after, "gated": hold is not None, "record": call_id})
    log.info(
        "settlement.debit uniqueid=%s leg=%s ext=%s number=%s disposition=%s billsec=%s "
        "trunk=%s rate=%s cost=%s balance_after=%s gated=%s evidence=%s",
        cmd.uniqueid, dial.leg or "-", price.extension_number, dial.dialled_number,
        dial.disposition, billsec, dial.trunk or "-", price.rate_id or "-", amount,
        balance_after if balance_after is not None else "-", hold is not None, dial.evidence,
    )
    return Settlement(cmd.uniqueid, amount, debited=True, balance_after=balance_after,
                      rate_id=price.rate_id, billable_seconds=billsec)


def _local(settings: BillingSettings, when: datetime | None) -> datetime | None:
    """A time as the PBX's naive local time (the zone as set now: a change applies at once)."""
    if when is None or when.tzinfo is None:
        return when
    return settings.local(when)


def _is_internal(session: Session, dial: DialOutcome, phone_pattern: str) -> bool:
    """An ungated call is ours to record only if it went out: not to a phone, not to an
    extension's number."""
    if dial.trunk and re.search(phone_pattern, dial.trunk, re.ASCII):
        return True
    return ledger_repo.is_extension(session, dial.dialled_number)


def _rate_for_ungated(
    ctx: BillingContext, session: Session, cmd: SettleChannel, settings: BillingSettings,
    when: datetime | None, dial: DialOutcome,
) -> tuple[Tariff | None, int | None, str]:
    if when is None:
        return None, None, ""
    book = rate_book(ctx, session, settings.rates_version)
    rate = book.select(cmd.caller_extension, dial.dialled_number, when)
    if rate is None:
        return None, None, ""
    return rate.tariff, rate.id, rate_label(rate.id, rate.prefix, rate.remark)


__all__ = ["settle_call", "settle_channel"]
