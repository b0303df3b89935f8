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
from coobill.rating.tariff import ZERO, Tariff, cost, max_duration, period_price_per_minute

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


# --- a split rate's schedule: what the gate holds for and settlement charges ----------------
#
# The tariffs a split call's periods are charged at depend only on the moment each starts, and
# selection changes only on whole minutes (windows are minutes, days and holidays midnights,
# dated decks minutes). So the gate looks the rates up once, a minute at a time over the
# longest call it may allow, and keeps the changes: (offset from the start, tariff), the first
# at 0. Cost and limit are then arithmetic over those segments, and settlement charges from
# the same schedule whatever the rates became meanwhile - so what the gate held is what the
# call is charged, and cost(limit) <= funds < cost(limit + 1) holds across the boundaries.

Schedule = tuple[tuple[int, Tariff], ...]


def tariff_schedule(first: Rate, start: datetime, horizon_seconds: int,
                    rate_at: RateAt) -> Schedule:
    """The tariff in force at each offset where it changes, up to `horizon_seconds`; `first`
    alone when it does not split. `start` may be aware (the gate passes UTC, and `rate_at`
    turns each moment into the PBX's local time, so a DST change falls where it does)."""
    changes: list[tuple[int, Tariff]] = [(0, first.tariff)]
    if not first.split:
        return tuple(changes)
    offset = 60 - start.second  # the first whole minute after the start
    while offset < horizon_seconds:
        found = rate_at(start + timedelta(seconds=offset))
        tariff = found.tariff if found is not None else first.tariff
        if tariff != changes[-1][1]:
            changes.append((offset, tariff))
        offset += 60
    return tuple(changes)


def _segments(schedule: Schedule, initial_seconds: int) -> Iterator[tuple[int, Tariff, int | None]]:
    """(second the next period starts at, its segment's tariff, the segment's end or None),
    walking the periods segment by segment: a period belongs to the segment it starts in."""
    t = initial_seconds
    for index, (_, tariff) in enumerate(schedule):
        end = schedule[index + 1][0] if index + 1 < len(schedule) else None
        if end is not None and t >= end:
            continue  # no period starts in this segment
        yield t, tariff, end  # t >= offset: it is at or past the previous segment's end
        if end is None:
            return
        # the periods started in this segment; the next one starts at or after its end
        periods = -(-(end - t) // tariff.period_seconds)
        t += periods * tariff.period_seconds


def schedule_cost(schedule: Schedule, billable_seconds: int) -> Decimal:
    """What `billable_seconds` cost by a schedule (0 unanswered): its first tariff's initial
    cost, then each started period at the tariff of the segment it starts in."""
    if billable_seconds <= 0:
        return ZERO
    first = schedule[0][1]
    total = first.initial_cost
    for t, tariff, end in _segments(schedule, first.initial_seconds):
        if t >= billable_seconds:
            break
        stop = billable_seconds if end is None else min(end, billable_seconds)
        total += -(-(stop - t) // tariff.period_seconds) * tariff.rate
    return total


def schedule_max_duration(schedule: Schedule, funds: Decimal, cap_seconds: int) -> int:
    """The longest talk, in whole seconds, whose schedule_cost is within `funds`, at most
    `cap_seconds`: cost(result) <= funds < cost(result + 1) below the cap."""
    first = schedule[0][1]
    if len(schedule) == 1:
        return max_duration(first, funds, cap_seconds)
    if cap_seconds <= 0 or funds < first.initial_cost or funds < 0:
        return 0
    left = funds - first.initial_cost
    for t, tariff, end in _segments(schedule, first.initial_seconds):
        if t >= cap_seconds:
            break
        stop = cap_seconds if end is None else min(end, cap_seconds)
        periods = -(-(stop - t) // tariff.period_seconds)
        paid = periods if tariff.rate == 0 else min(periods, int(left // tariff.rate))
        if paid < periods:
            return min(t + paid * tariff.period_seconds, cap_seconds)
        left -= periods * tariff.rate
    return cap_seconds


def first_period_dearer(schedule: Schedule, per_minute: Decimal) -> int | None:
    """The second the first period charged at more than `per_minute` a minute starts, or None:
    a call that stops there pays no such period (a period is charged at the tariff of the
    segment it starts in). The first tariff's own price is the caller's to check."""
    first = schedule[0][1]
    for t, tariff, _ in _segments(schedule, first.initial_seconds):
        if period_price_per_minute(tariff) > per_minute:
            return t
    return None
