"""Spend caps: the most an extension's calls may spend in a day, in a month and on one call,
and the dearest price per minute it may call at. Pure functions the gate and the quote share.

Each cap is the extension's own, else the site's default (a setting), else none. A cap folds
into the gate's decision as less money to spend: the limit granted is what the funds *and*
the caps allow. What a period has used is what its calls were debited in it (the counters
on the extension's row, `spent_day` / `spent_month`, kept by settlement, services/ledger.py)
plus every hold still open: a live call counts against the cap as it counts against the
funds. The gate's conditional update checks the same sum in SQL (storage/ledger_repo/holds.py
`take_hold`), on the row alone, so concurrent calls cannot together pass a cap, on SQLite
(one writer) or on PostgreSQL (the update re-reads the row it waited for).

Days and months are the PBX's (settings' time zone); a debit counts on the day its call
ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from coobill.money import ZERO
from coobill.rating import Schedule, Tariff, first_period_dearer, price_per_minute
from coobill.services.commands import Reason
from coobill.services.funds import Allowance, allowance
from coobill.services.settings import BillingSettings


@dataclass(frozen=True, slots=True)
class Caps:
    """The caps that apply to one extension (None: no such cap)."""

    daily: Decimal | None = None
    monthly: Decimal | None = None
    per_call: Decimal | None = None
    per_minute: Decimal | None = None

    @property
    def periodic(self) -> bool:
        return self.daily is not None or self.monthly is not None


NO_CAPS = Caps()


def caps_of(ext: Any, settings: BillingSettings) -> Caps:
    """The extension's caps (a row with cap_daily, cap_monthly, max_call_cost,
    max_price_minute), each falling back on the site's default."""
    def one(own: Decimal | None, default: Decimal | None) -> Decimal | None:
        return own if own is not None else default

    return Caps(daily=one(ext.cap_daily, settings.cap_daily),
                monthly=one(ext.cap_monthly, settings.cap_monthly),
                per_call=one(ext.max_call_cost, settings.max_call_cost),
                per_minute=one(ext.max_price_minute, settings.max_price_minute))


def day_of(at: datetime) -> str:
    return at.strftime("%Y-%m-%d")


def month_of(at: datetime) -> str:
    return at.strftime("%Y-%m")


def spent(ext: Any, at: datetime) -> tuple[Decimal, Decimal]:
    """What the extension's calls were debited on `at`'s day and in its month."""
    day = ext.spent_day if ext.spent_day_of == day_of(at) else ZERO
    month = ext.spent_month if ext.spent_month_of == month_of(at) else ZERO
    return day, month


def room(caps: Caps, ext: Any, at: datetime) -> tuple[Decimal, Reason] | None:
    """The most a new call may hold under the caps, and the cap that sets it; None when no
    cap applies. A period's cap is used by its debits and by every open hold."""
    day, month = spent(ext, at)
    candidates: list[tuple[Decimal, Reason]] = []
    if caps.daily is not None:
        candidates.append((caps.daily - day - ext.reserved, Reason.CAP_DAILY))
    if caps.monthly is not None:
        candidates.append((caps.monthly - month - ext.reserved, Reason.CAP_MONTHLY))
    if caps.per_call is not None:
        candidates.append((caps.per_call, Reason.MAX_PRICE))
    if not candidates:
        return None
    return min(candidates, key=lambda c: c[0])


# The least talk a split call the price cap cuts short is allowed (else: DENY max_price).
_LEAST_TALK_SECONDS = 60


@dataclass(frozen=True, slots=True)
class CappedAllowance:
    """The gate's decision on funds and caps: the allowance, and why there is none."""

    allowance: Allowance
    reason: Reason  # OK, NO_FUNDS or the cap that left nothing

    @property
    def allowed(self) -> bool:
        return self.allowance.allowed


def capped_allowance(tariff: Tariff, available: Decimal, caps: Caps, ext: Any, at: datetime,
                     max_call_seconds: int, schedule: Schedule | None = None
                     ) -> CappedAllowance:
    """What the funds and the caps allow together at `tariff`: a tariff dearer than the
    price per minute allowed is refused (max_price); else the funds, lowered to the caps'
    room, buy the limit (services/funds.py `allowance`, a split rate at its `schedule`).
    A split call that would go on into a dearer tariff than allowed (a cheap night rate
    before the day's) is let talk until its first dearer period would start - refused
    max_price when that leaves it less than a minute (the cap is a price a minute: a call
    cut within its first minute by the cap is the cap's refusal). When nothing is allowed,
    the reason is the cap that left less than the funds, else no_funds."""
    if caps.per_minute is not None:
        if price_per_minute(tariff) > caps.per_minute:
            return CappedAllowance(Allowance(available, 0, ZERO), Reason.MAX_PRICE)
        dearer = None if schedule is None else first_period_dearer(schedule, caps.per_minute)
        if dearer is not None:
            if dearer < _LEAST_TALK_SECONDS:
                return CappedAllowance(Allowance(available, 0, ZERO), Reason.MAX_PRICE)
            max_call_seconds = min(max_call_seconds, dearer)
    limit = room(caps, ext, at)
    if limit is None or limit[0] >= available:
        decided = allowance(tariff, available, max_call_seconds, schedule)
        return CappedAllowance(decided, Reason.OK if decided.allowed else Reason.NO_FUNDS)
    decided = allowance(tariff, max(limit[0], ZERO), max_call_seconds, schedule)
    # The verdict shows the funds; the hold is within the room.
    decided = Allowance(available, decided.limit_seconds, decided.held)
    return CappedAllowance(decided, Reason.OK if decided.allowed else limit[1])


__all__ = ["NO_CAPS", "CappedAllowance", "Caps", "capped_allowance", "caps_of", "day_of",
           "month_of", "room", "spent"]
