"""A rate book: every rate indexed by prefix, so a carrier deck of 100,000 rates quotes fast.

Selection walks the dialled number's prefixes from the longest down; the first prefix length
that holds a matching rate wins (longest prefix first), and within it the rule of
`select_rate` decides. It answers exactly as a scan with `select_rate` would.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time

from coobill.rating.calendar import ALWAYS, NO_HOLIDAYS, Calendar, Holidays
from coobill.rating.rates import EVERY_EXTENSION, Rate


class RateBook:
    """Immutable after construction; build a new one when rates change."""

    __slots__ = ("_by_prefix", "_lengths", "_rates", "holidays")

    def __init__(self, rates: Iterable[Rate], holidays: Holidays = NO_HOLIDAYS) -> None:
        self.holidays = holidays
        by_prefix: dict[str, list[Rate]] = {}
        kept: list[Rate] = []
        for rate in rates:
            if not rate.enabled:
                continue
            kept.append(rate)
            by_prefix.setdefault(rate.prefix, []).append(rate)
        # Each prefix's rates for an exact number length, by that length, and those for any
        # length: a call looks only at its own length's and the any-length ones (most rates of
        # a big deck are for another length). Within each, most specific first; the exact
        # length's come first, as Rate.specificity ranks them.
        self._by_prefix: dict[str, tuple[dict[int, tuple[_Checks, ...]], tuple[_Checks, ...]]] = {}
        for prefix, bucket in by_prefix.items():
            bucket.sort(key=Rate.specificity, reverse=True)
            exact: dict[int, list[Rate]] = {}
            for rate in bucket:
                if rate.number_length:
                    exact.setdefault(rate.number_length, []).append(rate)
            self._by_prefix[prefix] = (
                {length: tuple(map(_checks, found)) for length, found in exact.items()},
                tuple(_checks(rate) for rate in bucket if not rate.number_length))
        # The prefix lengths there are, longest first: a call tries only those.
        self._lengths = tuple(sorted({len(p) for p in by_prefix}, reverse=True))
        self._rates = tuple(kept)

    def __len__(self) -> int:
        return len(self._rates)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._rates)

    def select(self, extension: str, number: str, at: time | datetime) -> Rate | None:
        """The rate for a call at local time `at` (a datetime: its calendar counts too, with
        the book's holidays)."""
        by_prefix = self._by_prefix
        holidays = self.holidays
        length = len(number)
        minute = at.hour * 60 + at.minute
        day = at if isinstance(at, datetime) else None
        weekday, holiday = -1, False  # worked out at the first rate with a calendar
        for n in self._lengths:
            if n > length:
                continue
            entry = by_prefix.get(number[:n])
            if entry is None:
                continue
            # Rate.applies, the length already matched (each list holds one length's rates)
            # and inlined: a quote tries ~3 rates, and the calls were a third of its time.
            for checks in (entry[0].get(length, ()), entry[1]):
                for rate, extensions, first, last, calendar in checks:
                    if extensions is not None and extension not in extensions:
                        continue
                    if (minute < first or minute > last) if first <= last \
                            else (last < minute < first):
                        continue
                    if calendar is not None and day is not None:
                        if weekday < 0:
                            weekday, holiday = day.weekday(), bool(holidays) and day in holidays
                        if not calendar.holds_on(day, weekday, holiday):
                            continue
                    return rate
        return None


# What Rate.applies checks of a rate after its number length: the rate, its extensions (None:
# every one), its window's first and last minute, its calendar (None: always).
_Checks = tuple[Rate, frozenset[str] | None, int, int, Calendar | None]


def _checks(rate: Rate) -> _Checks:
    every = EVERY_EXTENSION in rate.extensions
    return (rate, None if every else rate.extensions, rate.window.first_minute,
            rate.window.last_minute, None if rate.calendar is ALWAYS else rate.calendar)
