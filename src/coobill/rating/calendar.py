"""When a rate applies beyond its time of day: days of the week, holidays, dated decks.

All in the PBX's local time (naive datetimes, as the CDRs give them). A window that crosses
midnight (22:00-06:00) belongs, minute by minute, to the day each minute falls on: a rate for
Saturdays with such a window holds Saturday 00:00-06:00 and Saturday 22:00-23:59.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EVERY_DAY: frozenset[int] = frozenset(range(7))

HolidayRule = Literal["any", "only", "except"]
HOLIDAY_RULES: tuple[HolidayRule, ...] = ("any", "only", "except")


def parse_days(text: str) -> frozenset[int]:
    """`mon,tue,sat` -> {0, 1, 5}; empty or `*` -> every day. ValueError names a bad day."""
    text = text.strip().lower()
    if text in ("", "*", "all"):
        return EVERY_DAY
    days = set()
    for given in text.split(","):
        part = given.strip()
        if part not in DAY_NAMES:
            raise ValueError(f"{part!r} is not a day (mon, tue, wed, thu, fri, sat, sun)")
        days.add(DAY_NAMES.index(part))
    return frozenset(days)


def days_text(days: frozenset[int]) -> str:
    """The canonical text of a set of days: "" for every day."""
    return "" if days == EVERY_DAY else ",".join(DAY_NAMES[d] for d in sorted(days))


@dataclass(frozen=True, slots=True)
class Holidays:
    """The PBX's holiday calendar: dates, and dates that come back every year."""

    dates: frozenset[date] = field(default_factory=frozenset)
    yearly: frozenset[tuple[int, int]] = field(default_factory=frozenset)  # (month, day)

    @classmethod
    def of(cls, entries: Iterable[tuple[date, bool]]) -> Holidays:
        """From (date, yearly) pairs."""
        dates, yearly = set(), set()
        for day, every_year in entries:
            (yearly.add((day.month, day.day)) if every_year else dates.add(day))
        return cls(frozenset(dates), frozenset(yearly))

    def __contains__(self, day: object) -> bool:
        if not isinstance(day, date):
            return False
        day = day.date() if isinstance(day, datetime) else day
        return day in self.dates or (day.month, day.day) in self.yearly

    def __bool__(self) -> bool:
        return bool(self.dates or self.yearly)


NO_HOLIDAYS = Holidays()


@dataclass(frozen=True, slots=True)
class Calendar:
    """The days a rate applies on, its holiday rule, and the span of its deck."""

    days: frozenset[int] = EVERY_DAY
    holidays: HolidayRule = "any"
    valid_from: datetime | None = None  # included
    valid_until: datetime | None = None  # excluded

    def __post_init__(self) -> None:
        if not self.days or not self.days <= EVERY_DAY:
            raise ValueError("a rate applies on at least one day of the week")
        if self.holidays not in HOLIDAY_RULES:
            raise ValueError("holidays: any, only or except")
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")

    def holds(self, at: datetime, holidays: Holidays = NO_HOLIDAYS) -> bool:
        return self.holds_on(at, at.weekday(), at in holidays)

    def holds_on(self, at: datetime, weekday: int, holiday: bool) -> bool:
        """`holds` with the day's weekday and whether it is a holiday worked out already (the
        rate book does it once a call, not once a rate)."""
        if self.valid_from is not None and at < self.valid_from:
            return False
        if self.valid_until is not None and at >= self.valid_until:
            return False
        if weekday not in self.days:
            return False
        if self.holidays == "any":
            return True
        return holiday == (self.holidays == "only")

    @property
    def always(self) -> bool:
        return (self.days == EVERY_DAY and self.holidays == "any"
                and self.valid_from is None and self.valid_until is None)


ALWAYS = Calendar()
