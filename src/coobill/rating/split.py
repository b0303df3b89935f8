"""A call that crosses a rate's boundary (a window's end, midnight into a weekend, a holiday,
a new deck taking effect): charged at its start's rate, as the appliance does, or - for a rate
set to split at boundaries - each part at the rate in force.

Split rating, period by period:
- the call's first rate is the one in force at its start; its initial cost covers its initial
  time (a connection fee when that is 0), as for any call;
- after that, billing goes one period at a time; each period is charged the rate, and lasts
  the period, of the rate in force at the moment it starts (if no rate applies at that
  moment, the call's first rate goes on);
- a started period is charged whole, as always.

The gate's limit comes from the same walk: the longest talk whose split cost the funds pay,
so that cost(limit) <= funds < cost(limit + 1) holds across boundaries too.

Pure: `RateAt` is any function from a local moment to the rate in force then (a RateBook's
`select`, bound to the caller and the number).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal

from coobill.rating.rates import Rate
from coobill.rating.tariff import ZERO, Tariff, cost, max_duration

RateAt = Callable[[datetime], Rate | None]


def _periods(first: Rate, start: datetime, rate_at: RateAt) -> Iterator[tuple[int, Tariff]]:
    """(second the period starts at, the tariff it is charged at), for every period after the
    initial time, forever. Selection changes only on whole minutes: one lookup a minute."""
    t = first.tariff.initial_seconds
    minute: datetime | None = None
    tariff = first.tariff
    while True:
        moment = start + timedelta(seconds=t)
        this_minute = moment.replace(second=0, microsecond=0)
        if this_minute != minute:
            minute = this_minute
            found = rate_at(moment)
            tariff = found.tariff if found is not None else first.tariff
        yield t, tariff
        t += tariff.period_seconds


def split_cost(first: Rate, start: datetime, billable_seconds: int, rate_at: RateAt) -> Decimal:
    """What `billable_seconds` from `start` cost (0 unanswered); the whole call at `first`'s
    tariff unless `first` splits at boundaries."""
    if not first.split:
        return cost(first.tariff, billable_seconds)
    if billable_seconds <= 0:
        return ZERO
    total = first.tariff.initial_cost
    for t, tariff in _periods(first, start, rate_at):
        if t >= billable_seconds:
            break
        total += tariff.rate
    return total


def split_max_duration(first: Rate, start: datetime, funds: Decimal, cap_seconds: int,
                       rate_at: RateAt) -> int:
    """The longest talk from `start`, in whole seconds, whose cost is within `funds`, at most
    `cap_seconds`: cost(result) <= funds < cost(result + 1) below the cap."""
    if not first.split:
        return max_duration(first.tariff, funds, cap_seconds)
    if cap_seconds <= 0 or funds < first.tariff.initial_cost or funds < 0:
        return 0
    left = funds - first.tariff.initial_cost
    for t, tariff in _periods(first, start, rate_at):
        if t >= cap_seconds:
            break
        if tariff.rate > left:
            return t  # this period cannot be paid: the talk stops where it starts
        left -= tariff.rate
    return cap_seconds
