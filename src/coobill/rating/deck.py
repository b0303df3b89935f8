"""Carrier decks: their common CSV layouts mapped onto coobill's tariff, and what an import
would change.

A carrier prices a destination per minute, with an optional connection fee and a billing
increment written as two numbers: the first increment (the minimum charged) and the next
ones, e.g. 60/60 (per minute), 30/6, 1/1 (per second). coobill's tariff is an initial cost
covering an initial time, then a rate per started period (rating/tariff.py). The mapping:

    initial_seconds = first increment
    initial_cost    = connect_fee + rate_per_minute * first increment / 60
    period_seconds  = next increment
    rate            = rate_per_minute * next increment / 60

so a call of N seconds costs what the carrier's own rule gives: the fee, the first increment
whole, then each started increment (0.0600/min at 30/6: 45 s = 0.03 + 3 x 0.006 = 0.048).
With no increments given, 60/60. Prices have four places (money.py): a per-increment price
that does not fit is rounded half up and the row says so (`rounded`), so a dry run shows it.

Pure: text in, values out; ValueError names the line and the column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Generic, TypeVar

from coobill.rating.tariff import Tariff

PLACES = Decimal("0.0001")
MINUTE = 60
# The carrier layout's columns, in order; the first three are required.
CARRIER_COLUMNS = ("prefix", "description", "rate_per_minute", "connect_fee",
                   "initial_increment", "increment")
_REQUIRED = 3
_MAX_INCREMENT = 3600
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class CarrierRate:
    """One destination of a carrier deck, as coobill will bill it."""

    line: int
    prefix: str
    description: str
    tariff: Tariff
    rounded: bool  # a per-increment price did not fit four places


def carrier_tariff(rate_per_minute: Decimal, connect_fee: Decimal = Decimal(0),
                   initial_increment: int = MINUTE, increment: int = MINUTE
                   ) -> tuple[Tariff, bool]:
    """The tariff that bills as the carrier does, and whether a price had to be rounded."""
    if rate_per_minute < 0 or connect_fee < 0:
        raise ValueError("prices must not be negative")
    if not 0 <= initial_increment <= _MAX_INCREMENT or not 1 <= increment <= _MAX_INCREMENT:
        raise ValueError(
            f"increments are whole seconds, 0-{_MAX_INCREMENT} then 1-{_MAX_INCREMENT}"
        )
    exact_initial = connect_fee + rate_per_minute * initial_increment / MINUTE
    exact_rate = rate_per_minute * increment / MINUTE
    initial = exact_initial.quantize(PLACES, ROUND_HALF_UP)
    rate = exact_rate.quantize(PLACES, ROUND_HALF_UP)
    rounded = initial != exact_initial or rate != exact_rate
    return Tariff(initial, initial_increment, rate, increment), rounded


def _decimal(text: str, column: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{column}: {text!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"{column}: {text!r} is not a number")
    return value


def _seconds(text: str, column: str) -> int:
    text = text.strip()
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{column}: {text!r} is not a whole number of seconds")
    return int(text)


def looks_like_carrier_deck(header: Iterable[str]) -> bool:
    """Whether a CSV header names the carrier layout (its first three columns)."""
    names = [h.strip().lower() for h in header]
    return names[:_REQUIRED] == list(CARRIER_COLUMNS[:_REQUIRED])


def parse_carrier_deck(text: str) -> list[CarrierRate]:
    """Every row of a carrier deck (header first; the optional columns may be left out or
    empty), or ValueError naming the first bad line."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = next(reader, None)
    if header is None or not looks_like_carrier_deck(header):
        raise ValueError("line 1: the header must start " + ",".join(CARRIER_COLUMNS[:_REQUIRED]))
    rates = []
    seen: dict[str, int] = {}
    for line, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < _REQUIRED or len(row) > len(CARRIER_COLUMNS):
            raise ValueError(f"line {line}: {_REQUIRED} to {len(CARRIER_COLUMNS)} columns expected")
        cells = dict(zip(CARRIER_COLUMNS, (c.strip() for c in row), strict=False))
        try:
            prefix = cells["prefix"]
            if not (prefix.isascii() and prefix.isdigit()):
                raise ValueError(f"prefix: {prefix!r} is not digits")
            if prefix in seen:
                raise ValueError(f"prefix {prefix} is already on line {seen[prefix]}")
            seen[prefix] = line
            first = _seconds(cells.get("initial_increment") or str(MINUTE), "initial_increment")
            # "30" alone is 30/30; "0" alone (no minimum) then per minute.
            then = cells.get("increment") or str(first or MINUTE)
            tariff, rounded = carrier_tariff(
                _decimal(cells["rate_per_minute"], "rate_per_minute"),
                _decimal(cells.get("connect_fee") or "0", "connect_fee"),
                first,
                _seconds(then, "increment"),
            )
        except ValueError as exc:
            raise ValueError(f"line {line}: {exc}") from None
        rates.append(CarrierRate(line, prefix, cells["description"], tariff, rounded))
    return rates


@dataclass(frozen=True, slots=True)
class Change(Generic[K, V]):
    key: K
    old: V
    new: V


@dataclass(frozen=True, slots=True)
class DeckDiff(Generic[K, V]):
    """What replacing one deck by another does, each list in key order."""

    added: tuple[tuple[K, V], ...]
    removed: tuple[tuple[K, V], ...]
    changed: tuple[Change[K, V], ...]
    unchanged: int

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def diff_decks(
    current: Mapping[K, V], incoming: Mapping[K, V], order: Callable[[K], Any] = lambda key: key
) -> DeckDiff[K, V]:
    """Added, removed and changed entries (by key: a rate's prefix, length, window and
    extensions), old value beside new."""
    added = tuple((k, incoming[k]) for k in sorted(incoming.keys() - current.keys(), key=order))
    removed = tuple((k, current[k]) for k in sorted(current.keys() - incoming.keys(), key=order))
    both = current.keys() & incoming.keys()
    # only the changed keys are listed, so only they are sorted (a new deck is mostly the same)
    changed = tuple(Change(k, current[k], incoming[k])
                    for k in sorted((k for k in both if current[k] != incoming[k]), key=order))
    return DeckDiff(added, removed, changed, len(both) - len(changed))
