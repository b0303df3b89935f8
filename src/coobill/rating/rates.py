"""Rates and how one is chosen for a call.

A rate applies to a call when it is enabled, its prefix starts the dialled number, its number
length is 0 (any) or the dialled number's length (prefix included), its time-of-day window holds
the call's local time, its calendar (days of the week, holidays, the span of its deck) holds the
call's local date, and the caller is among its extensions. Of those, the most specific wins:
longest prefix, then an exact length over length 0, then the earliest created (lowest id).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time

from coobill.rating.calendar import ALWAYS, NO_HOLIDAYS, Calendar, Holidays
from coobill.rating.tariff import Tariff


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """The minutes of the day a rate is valid, both ends included (00:00-23:59 is all day).

    A window whose start is after its end crosses midnight: 22:00-06:00 holds 23:30 and 05:59.
    Seconds are ignored: a window ending 17:59 holds 17:59:59.
    """

    start: time
    end: time
    # The ends as minutes of the day, worked out once: the rate book asks every call.
    first_minute: int = field(init=False, repr=False, compare=False)
    last_minute: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for t in (self.start, self.end):
            if t.second or t.microsecond:
                raise ValueError("a window's ends are whole minutes")
        object.__setattr__(self, "first_minute", self.start.hour * 60 + self.start.minute)
        object.__setattr__(self, "last_minute", self.end.hour * 60 + self.end.minute)

    def holds(self, at: time) -> bool:
        return self.holds_minute(at.hour * 60 + at.minute)

    def holds_minute(self, minute: int) -> bool:
        start, end = self.first_minute, self.last_minute
        if start <= end:
            return start <= minute <= end
        return minute >= start or minute <= end


ALL_DAY = TimeWindow(time(0, 0), time(23, 59))


# In a rate's extensions, "*" stands for every extension (a carrier deck for the whole PBX).
EVERY_EXTENSION = "*"


@dataclass(frozen=True, slots=True)
class Rate:
    """A rate as the rating core sees it: who and what it matches, and its tariff."""

    id: int
    prefix: str
    number_length: int
    tariff: Tariff
    window: TimeWindow
    extensions: frozenset[str]
    enabled: bool = True
    remark: str = ""
    calendar: Calendar = ALWAYS
    # Split at boundaries: each billing period after the first is charged at the rate in force
    # when it starts (rating/split.py); else the whole call at the rate of its start.
    split: bool = False

    def __post_init__(self) -> None:
        if self.prefix and not (self.prefix.isascii() and self.prefix.isdigit()):
            raise ValueError("a prefix is digits only")
        if self.number_length < 0:
            raise ValueError("number length must not be negative")
        if self.number_length and self.number_length < len(self.prefix):
            raise ValueError("number length counts the prefix, so it cannot be shorter than it")

    def matches(self, extension: str, number: str, at: time | datetime,
                holidays: Holidays = NO_HOLIDAYS) -> bool:
        """Whether the rate applies; `at` the call's local time, or its local date and time
        (a bare time of day ignores the calendar)."""
        day = at if isinstance(at, datetime) else None
        return (self.enabled and number.startswith(self.prefix)
                and self.applies(extension, len(number), at.hour * 60 + at.minute, day,
                                 day.weekday() if day else 0, day in holidays if day else False))

    def applies(self, extension: str, length: int, minute: int, day: datetime | None,
                weekday: int, holiday: bool) -> bool:
        """The checks after the prefix, cheapest first: the number's length, the caller, the
        minute of the day, then (given a date, its weekday and whether it is a holiday) the
        calendar - which ALWAYS, shared by every rate without one, skips."""
        return ((self.number_length == 0 or self.number_length == length)
                and (extension in self.extensions or EVERY_EXTENSION in self.extensions)
                and self.window.holds_minute(minute)
                and (day is None or self.calendar is ALWAYS
                     or self.calendar.holds_on(day, weekday, holiday)))

    def specificity(self) -> tuple[int, int, int]:
        """Sort key: higher wins. Longest prefix, then exact length, then earliest created."""
        return (len(self.prefix), 1 if self.number_length else 0, -self.id)


def select_rate(rates: Iterable[Rate], extension: str, number: str, at: time | datetime,
                holidays: Holidays = NO_HOLIDAYS) -> Rate | None:
    """The rate that applies to `extension` dialling `number` at local time `at`, or None."""
    best: Rate | None = None
    for rate in rates:
        if rate.matches(extension, number, at, holidays) and (
            best is None or rate.specificity() > best.specificity()
        ):
            best = rate
    return best
