"""A rate book: every rate indexed by prefix, so a carrier deck of 100,000 rates quotes fast.

Selection walks the dialled number's prefixes from the longest down; the first prefix length
that holds a matching rate wins (longest prefix first), and within it the rule of
`select_rate` decides. It answers exactly as a scan with `select_rate` would.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time
from itertools import groupby
from operator import attrgetter

from coobill.rating.calendar import ALWAYS, NO_HOLIDAYS, Calendar, Holidays
from coobill.rating.rates import EVERY_EXTENSION, Rate


class RateBook:
    """Immutable after construction; build a new one when rates change."""

    __slots__ = ("_any_length", "_by_length", "_lengths", "_rates", "holidays")

    def __init__(self, rates: Iterable[Rate], holidays: Holidays = NO_HOLIDAYS) -> None:
        self.holidays = holidays
        kept = [rate for rate in rates if rate.enabled]
        # Each prefix's rates for an exact number length, kept under that length, and those
        # for any length: a call looks only at its own length's and the any-length ones (most
        # rates of a big deck are for another length). Within each, most specific first (two
        # stable sorts: by prefix, and within a prefix as Rate.specificity ranks them).
        # Two flat maps, not a map per prefix, and no list per prefix while building: a
        # 100,000-rate deck's book takes ~30 MB less (docs/benchmarks.md).
        ordered = sorted(kept, key=Rate.specificity, reverse=True)
        ordered.sort(key=_prefix)
        self._any_length: dict[str, tuple[_Checks, ...]] = {}
        self._by_length: dict[int, dict[str, tuple[_Checks, ...]]] = {}
        for prefix, group in groupby(ordered, key=_prefix):
            bucket = list(group)
            lengths = {rate.number_length for rate in bucket}
            for length in lengths - {0}:
                self._by_length.setdefault(length, {})[prefix] = tuple(
                    _checks(rate) for rate in bucket if rate.number_length == length)
            if 0 in lengths:
                self._any_length[prefix] = tuple(
                    _checks(rate) for rate in bucket if not rate.number_length)
        # The prefix lengths there are, longest first: a call tries only those.
        self._lengths = tuple(sorted({len(rate.prefix) for rate in kept}, reverse=True))
        self._rates = tuple(kept)

    def __len__(self) -> int:
        return len(self._rates)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._rates)

    def select(self, extension: str, number: str, at: time | datetime) -> Rate | None:
        """The rate for a call at local time `at` (a datetime: its calendar counts too, with
        the book's holidays)."""
        any_length = self._any_length
        length = len(number)
        exact = self._by_length.get(length, _NONE)
        holidays = self.holidays
        minute = at.hour * 60 + at.minute
        day = at if isinstance(at, datetime) else None
        weekday, holiday = -1, False  # worked out at the first rate with a calendar
        for n in self._lengths:
            if n > length:
                continue
            prefix = number[:n]
            # Rate.applies, the length already matched (each list holds one length's rates)
            # and inlined: a quote tries ~3 rates, and the calls were a third of its time.
            for checks in (exact.get(prefix, ()), any_length.get(prefix, ())):
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


_prefix = attrgetter("prefix")
_NONE: dict[str, tuple[_Checks, ...]] = {}  # no rate for this number length (never written)


# What Rate.applies checks of a rate after its number length: the rate, its extensions (None:
# every one), its window's first and last minute, its calendar (None: always).
_Checks = tuple[Rate, frozenset[str] | None, int, int, Calendar | None]


def _checks(rate: Rate) -> _Checks:
    every = EVERY_EXTENSION in rate.extensions
    return (rate, None if every else rate.extensions, rate.window.first_minute,
            rate.window.last_minute, None if rate.calendar is ALWAYS else rate.calendar)
