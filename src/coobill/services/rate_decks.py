"""A deck of rates as CSV: export, import (added, replacing, or dated), and what an import
would change (its dry run).

Two layouts are read (the header says which):
- coobill's own, the columns of `rate_fields.RATE_FIELD_NAMES` (what `rate export` writes);
  the calendar's columns may be left out;
- a carrier's, `prefix,description,rate_per_minute[,connect_fee][,initial_increment]
  [,increment]`, mapped onto the tariff by rating/deck.py (docs/rating.md §6): each row one
  rate for every extension, all day, its description the remark.

A dated import (`effective`, "rate import FILE --from ..."): the deck takes effect at that
moment (PBX local time) and the deck in force stays in force until then - every sell rate
still in force at the moment gets it as its `valid_until`; one that would only have started
at or after it (a deck planned before) is dropped; the new rates get it as their
`valid_from`. A call is rated by the rates in force at its start (rating/calendar.py), so
one started a second before the moment is rated by the old deck.

The diff compares the rates in force at the moment (now, without one) with those that will
be in force then, keyed by what a rate matches (prefix, length, window, extensions, days,
holidays), valued by its price; `rating/deck.py` `diff_decks`.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, insert, or_, select, update

from coobill.errors import BadRequest
from coobill.money import fmt
from coobill.rating.deck import DeckDiff, diff_decks, looks_like_carrier_deck, parse_carrier_deck
from coobill.services.context import BillingContext
from coobill.services.rate_fields import (
    ALL_EXTENSIONS,
    RATE_FIELD_NAMES,
    RateFields,
    check_rate_fields,
    check_trunk,
    moment_text,
    parse_moment,
    public_values,
)
from coobill.services.rates import RateView, check_extensions_exist, columns_of
from coobill.services.settings import billing_settings, bump_rates_version
from coobill.storage.tables import Rate, table
from coobill.storage.uow import UnitOfWork

CSV_COLUMNS = tuple(RATE_FIELD_NAMES)
# Columns a deck may leave out: the rate is enabled, without remark, every day, holidays or
# not, from now on, unsplit.
OPTIONAL_COLUMNS = frozenset({"enabled", "remark", "days", "holidays", "valid_from",
                              "valid_until", "split", "trunk"})
_BATCH = 5000
# A deck's columns as check_rate_fields' arguments: those passed as they are, and those
# whose empty cell (or missing column: a deck of before the calendar) is "", their default.
_OR_EMPTY = tuple((c, RATE_FIELD_NAMES[c]) for c in CSV_COLUMNS
                  if c in OPTIONAL_COLUMNS - {"enabled"} or c == "extensions")
_AS_GIVEN = tuple((c, RATE_FIELD_NAMES[c]) for c in CSV_COLUMNS
                  if c not in OPTIONAL_COLUMNS and c != "extensions")

# What a rate matches, and what it charges: the diff's key and value.
DeckKey = tuple[str, int, str, str, str, str, str]


@dataclass(frozen=True, slots=True)
class Price:
    initial_cost: str
    initial_seconds: int
    rate: str
    period_seconds: int
    split: bool
    remark: str

    def __str__(self) -> str:
        split = ", split" if self.split else ""
        return (f"{self.initial_cost} for {self.initial_seconds} s, then {self.rate} per "
                f"{self.period_seconds} s{split}")


@dataclass(frozen=True, slots=True)
class DeckImport:
    """What an import did, or - a dry run - would do."""

    count: int
    effective: datetime | None
    diff: DeckDiff[DeckKey, Price]
    written: bool


def key_text(key: DeckKey) -> str:
    """How a diff names a rate: "0044 (any length, 00:00-23:59, *)"."""
    prefix, length, start, end, extensions, days, holidays = key
    parts = [f"length {length}" if length else "any length", f"{start}-{end}", extensions]
    if days:
        parts.append(days)
    if holidays != "any":
        parts.append(f"holidays {holidays}")
    return f"{prefix or '(any prefix)'} ({', '.join(parts)})"


def diff_lines(diff: DeckDiff[DeckKey, Price]) -> list[str]:
    """The diff as `rate import --dry-run` prints it, one line a rate."""
    lines = [f"+ {key_text(k)}: {v}" for k, v in diff.added]
    lines += [f"- {key_text(k)}: {v}" for k, v in diff.removed]
    lines += [f"~ {key_text(c.key)}: {c.old} -> {c.new}" for c in diff.changed]
    summary = (f"{len(diff.added)} added, {len(diff.removed)} removed, {len(diff.changed)} "
               f"changed, {diff.unchanged} unchanged")
    return [*lines, summary]


# The diff reads both decks as the rate table's columns (rates.py columns_of): the deck in
# force as its rows, the incoming one as the rows about to be written - 100,000 rates are not
# turned into RateFields to be compared.
Columns = Mapping[Any, Any]  # by column name (a RowMapping also takes Column keys)
# What _key, _price and _in_force read.
_DIFF_COLUMNS = ("prefix", "number_length", "start_time", "end_time", "extensions", "days",
                 "holidays", "initial_cost", "initial_seconds", "rate", "period_seconds",
                 "split", "remark", "enabled", "valid_from", "valid_until")


def _key(rate: Columns) -> DeckKey:
    return (rate["prefix"], rate["number_length"], rate["start_time"], rate["end_time"],
            rate["extensions"], rate["days"], rate["holidays"])


def _price(rate: Columns) -> Price:
    return Price(fmt(rate["initial_cost"]), rate["initial_seconds"], fmt(rate["rate"]),
                 rate["period_seconds"], rate["split"], rate["remark"])


def _in_force(rate: Columns, at: datetime) -> bool:
    valid_from, valid_until = rate["valid_from"], rate["valid_until"]
    return bool(rate["enabled"] and (valid_from is None or valid_from <= at)
                and (valid_until is None or at < valid_until))


def _deck_map(rates: Iterable[Columns]) -> dict[DeckKey, Price]:
    """The first rate of each key (the earliest created: the one selection picks)."""
    found: dict[DeckKey, Price] = {}
    for rate in rates:
        key = _key(rate)
        if key not in found:
            found[key] = _price(rate)
    return found


# --- reading and writing CSV ---------------------------------------------------------------


def deck_cells(rates: Iterable[RateView]) -> Iterator[list[str]]:
    """Each rate as a row of the deck's CSV_COLUMNS, as `rate export` writes and an import
    reads them (the CLI's export, the portal's and the API's download)."""
    for view in rates:
        row = public_values(view.fields)
        row |= {"enabled": "1" if row["enabled"] else "0", "initial_cost": fmt(row["initial_cost"]),
                "trunk": row["trunk"],
                "rate": fmt(row["rate"]), "extensions": ",".join(row["extensions"]),
                "valid_from": moment_text(row["valid_from"]),
                "valid_until": moment_text(row["valid_until"]),
                "split": "1" if row["split"] else "0"}
        yield [row[c] for c in CSV_COLUMNS]


def rates_to_csv(rates: Iterable[RateView]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(deck_cells(rates))
    return out.getvalue()


def parse_deck(text: str) -> list[RateFields]:
    """Every row of a deck in either layout, validated; BadRequest names the first bad line."""
    header = next(csv.reader(io.StringIO(text.lstrip("\ufeff"))), None)
    if header is not None and looks_like_carrier_deck(header):
        return _carrier_rates(text)
    return parse_rates_csv(text)


def _carrier_rates(text: str) -> list[RateFields]:
    try:
        rows = parse_carrier_deck(text)
    except ValueError as exc:
        # rating/deck.py says "line N: <column>: <what>": as a coobill deck's "csv line N: ..."
        raise BadRequest("csv " + str(exc), field="file") from None
    return [RateFields(prefix=r.prefix, number_length=0, initial_cost=r.tariff.initial_cost,
                       initial_seconds=r.tariff.initial_seconds, rate=r.tariff.rate,
                       period_seconds=r.tariff.period_seconds, start="00:00", end="23:59",
                       extensions=(ALL_EXTENSIONS,), remark=r.description.strip()[:255])
            for r in rows]


def parse_rates_csv(text: str) -> list[RateFields]:
    """Every row of a deck in coobill's layout, validated; BadRequest names the first bad
    line and field."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    # Read as csv.DictReader would (a repeated column's last cell counts; blank lines are
    # skipped; a short row's missing cells are None), without a dict a row.
    position = {column: i for i, column in enumerate(next(reader, []))}
    missing = set(CSV_COLUMNS) - OPTIONAL_COLUMNS - set(position)
    if missing:
        raise BadRequest(f"csv: missing columns {', '.join(sorted(missing))}", field="file")
    # (argument, the column's place or None when the deck has none, "" for an empty cell?)
    cells_of = [(name, position.get(column), or_empty)
                for columns, or_empty in ((_AS_GIVEN, False), (_OR_EMPTY, True))
                for column, name in columns]
    enabled_at = position.get("enabled")
    deck = []
    for line, row in enumerate(filter(None, reader), start=2):
        try:
            size = len(row)
            given = row[enabled_at] if enabled_at is not None and enabled_at < size else None
            enabled = (given or "1").strip().lower()
            if enabled not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise BadRequest(f"enabled: {enabled!r} is not a yes/no value", field="enabled")
            # every column passed, a short row's None too (refused by its field's check)
            fields: dict[str, object] = {}
            for name, at, or_empty in cells_of:
                cell = row[at] if at is not None and at < size else None
                fields[name] = (cell or "") if or_empty else cell
            fields["enabled"] = enabled in ("1", "true", "yes", "on")
            deck.append(check_rate_fields(**fields))
        except BadRequest as exc:
            raise BadRequest(f"csv line {line}: {exc.message}", field=exc.field) from None
    return deck


# --- importing -----------------------------------------------------------------------------


def _date(rows: list[dict[str, Any]], effective: datetime) -> None:
    """The deck's rates (as rows to write) take effect at `effective` (a row's own later
    start is kept)."""
    for line, row in enumerate(rows, start=2):
        if row["valid_until"] is not None and row["valid_until"] <= effective:
            raise BadRequest(f"csv line {line}: valid_until: ends before the deck takes effect",
                             field="valid_until")
        # valid_until > effective and start >= effective: still a valid span, not re-checked
        row["valid_from"] = max(row["valid_from"] or effective, effective)


def _scope(trunk: str) -> ColumnElement[bool]:
    """The deck an import replaces: the sell rates, or one trunk's buy rates."""
    return Rate.trunk == trunk if trunk else Rate.trunk.is_(None)


async def _deck_rows(uow: UnitOfWork, trunk: str) -> Sequence[Columns]:
    # Plain rows, not ORM objects: a deck is 100,000 of them, and none is changed through the
    # session (the import's statements are Core's).
    columns = [table(Rate).c[name] for name in _DIFF_COLUMNS]
    return (await uow.session.execute(
        select(*columns).where(_scope(trunk)).order_by(Rate.id))).mappings().all()


async def _end_the_deck_in_force(uow: UnitOfWork, effective: datetime, trunk: str) -> None:
    """The deck's rates in force at `effective` end there; those planned to start at or
    after it are dropped (the new deck replaces them)."""
    sell = _scope(trunk)
    await uow.session.execute(delete(Rate).where(
        sell, Rate.valid_from.is_not(None), Rate.valid_from >= effective))
    await uow.session.execute(update(Rate).where(
        sell, or_(Rate.valid_until.is_(None), Rate.valid_until > effective)
    ).values(valid_until=effective))


async def import_rates(ctx: BillingContext, text: str, *, replace_all: bool = False,
                       effective: object = None, dry_run: bool = False,
                       trunk: str | None = None) -> DeckImport:
    """Add every rate of a deck, replace all sell rates with it (`replace_all`), or have it
    take effect at a moment (`effective`); all or nothing. `dry_run`: only what it would
    change. `trunk`: the deck is that trunk's buy rates, and replaces only them."""
    with _collector_paused():
        return await _import_rates(ctx, text, replace_all=replace_all, effective=effective,
                                   dry_run=dry_run, trunk=trunk)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """A deck's rows are objects made in bulk that live until the import ends, with no
    cycles among them: the cyclic collector's passes over them free nothing and were a fifth
    of a 100,000-rate dated import (5.9 -> 4.7 s without them; docs/benchmarks.md)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def _import_rates(ctx: BillingContext, text: str, *, replace_all: bool,
                        effective: object, dry_run: bool, trunk: str | None) -> DeckImport:
    deck = parse_deck(text)
    scope = (trunk or "").strip()
    if scope:
        check_trunk(scope)
        deck = [replace(f, trunk=scope, extensions=(ALL_EXTENSIONS,)) for f in deck]
    moment = parse_moment(effective, "from") if effective not in (None, "") else None
    if moment is not None and replace_all:
        raise BadRequest("from: a dated deck replaces the deck in force at its moment; "
                         "--replace is for now", field="from")
    rows = [columns_of(f) for f in deck]
    if moment is not None:
        _date(rows, moment)
    async with ctx.uow() as uow:
        await check_extensions_exist(uow, {e for f in deck for e in f.extensions})
        now = (await billing_settings(uow)).local(ctx.clock())
        at = moment or now
        before = _deck_map(r for r in await _deck_rows(uow, scope) if _in_force(r, at))
        incoming = _deck_map(r for r in rows if _in_force(r, at) and (r["trunk"] or "") == scope)
        after = incoming if (replace_all or moment is not None) else {**incoming, **before}
        diff = diff_decks(before, after)
        if dry_run:
            return DeckImport(len(deck), moment, diff, written=False)
        if replace_all:
            await uow.session.execute(delete(Rate).where(_scope(scope)))
        elif moment is not None:
            await _end_the_deck_in_force(uow, moment, scope)
        for row in rows:
            row["created_at"] = now
        # Core's executemany: the ORM's bulk insert splits the rows into a statement per run
        # of rows whose None columns differ (a dated rate among undated ones), 100x slower
        for start in range(0, len(rows), _BATCH):
            await uow.session.execute(insert(table(Rate)), rows[start : start + _BATCH])
        await bump_rates_version(uow)
        await uow.commit()
    return DeckImport(len(deck), moment, diff, written=True)


__all__ = ["CSV_COLUMNS", "DeckImport", "deck_cells", "diff_lines", "import_rates", "parse_deck",
           "parse_rates_csv", "rates_to_csv"]
