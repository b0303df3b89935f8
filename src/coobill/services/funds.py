"""Funds, and the gate's decision on them: pure functions the gate and the quote share.

Funds = balance + credit limit - reserved: what an extension may still spend. The gate's
conditional hold states the same formula in SQL (`storage/ledger_repo/base.py` `FUNDS`, so
that two calls cannot spend the same funds); everything else that shows or decides on funds
calls `funds()`.

What funds buy at a tariff is `allowance()`: the gate allows the call with that limit and
holds its cost, and a quote shows the same limit, so a quote never says a call would go
through that the gate would refuse (tests/services/test_quote.py checks it on random funds).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from coobill.money import ZERO
from coobill.rating import (
    Rate,
    RateBook,
    Schedule,
    Tariff,
    cost,
    max_duration,
    minimum_to_connect,
    schedule_cost,
    schedule_max_duration,
    tariff_schedule,
)


def funds(balance: Decimal, credit_limit: Decimal, reserved: Decimal) -> Decimal:
    """What an extension may still spend."""
    return balance + credit_limit - reserved


@dataclass(frozen=True, slots=True)
class Allowance:
    """What `funds` buy at one tariff: the talk time (0: not even a call's start) and what
    the gate holds for it."""

    funds: Decimal
    limit_seconds: int
    held: Decimal

    @property
    def allowed(self) -> bool:
        return self.limit_seconds > 0


def allowance(tariff: Tariff, available: Decimal, max_call_seconds: int,
              schedule: Schedule | None = None) -> Allowance:
    """The gate's decision on funds: a call is allowed only when the funds cover its start
    (the initial cost, else one period) and buy at least one second, up to the cap; the hold
    is the cost of the whole limit. A split rate's `schedule` (rating/split.py) prices the
    limit and the hold piecewise, by the same walk settlement charges."""
    if schedule is not None and len(schedule) > 1:
        limit = schedule_max_duration(schedule, available, max_call_seconds)
        held = schedule_cost(schedule, limit)
    else:
        limit = max_duration(tariff, available, max_call_seconds)
        held = cost(tariff, limit)
    if available < minimum_to_connect(tariff) or limit <= 0:
        return Allowance(available, 0, ZERO)
    return Allowance(available, limit, held)


def split_schedule(book: RateBook, rate: Rate, extension: str, number: str,
                   local: Callable[[datetime], datetime], instant: datetime,
                   horizon: int) -> Schedule | None:
    """A split rate's tariffs over the longest call the gate may allow from `instant` (aware:
    each minute is looked up at the PBX's local time `local` gives, so a DST change falls
    where the clock puts it); None for a rate that does not split."""
    if not rate.split:
        return None

    def rate_at(moment: datetime) -> Rate | None:
        return book.select(extension, number, local(moment))

    return tariff_schedule(rate, instant, horizon, rate_at)


__all__ = ["Allowance", "allowance", "funds", "split_schedule"]
