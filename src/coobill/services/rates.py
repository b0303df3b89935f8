"""Rates: add, edit, delete, list, import and export a deck, quote; the rate book in memory."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import time
from decimal import Decimal

from sqlalchemy import BigInteger, delete, insert, select, type_coerce
from sqlalchemy.orm import Session

from coobill.errors import BadRequest, UnknownExtension, UnknownRate
from coobill.money import fmt, from_units
from coobill.rating import Rate as RatingRate
from coobill.rating import RateBook, Tariff, TimeWindow, cost
from coobill.services.bounds import MAX_ID, is_digits, whole_number
from coobill.services.caps import capped_allowance, caps_of
from coobill.services.context import BillingContext
from coobill.services.funds import funds
from coobill.services.rate_fields import (
    ALL_EXTENSIONS,
    RATE_FIELD_NAMES,
    RateFields,
    check_rate_fields,
    parse_hhmm,
    public_values,
)
from coobill.services.settings import billing_settings, bump_rates_version
from coobill.storage.tables import Extension, Rate
from coobill.storage.uow import UnitOfWork

# A dialled number (E.164 is at most 15 digits; with an outside-line prefix a few more).
MAX_NUMBER_DIGITS = 32
MAX_QUOTE_SECONDS = 86_400

CSV_COLUMNS = tuple(RATE_FIELD_NAMES)


@dataclass(frozen=True, slots=True)
class RateView:
    id: int
    fields: RateFields


def _fields_of(row: Rate) -> RateFields:
    return RateFields(
        prefix=row.prefix, number_length=row.number_length, initial_cost=row.initial_cost,
        initial_seconds=row.initial_seconds, rate=row.rate, period_seconds=row.period_seconds,
        start=row.start_time, end=row.end_time,
        extensions=tuple(e for e in row.extensions.split(",") if e),
        remark=row.remark, enabled=row.enabled,
    )


def _columns(fields: RateFields) -> dict[str, object]:
    return {
        "enabled": fields.enabled, "remark": fields.remark, "prefix": fields.prefix,
        "number_length": fields.number_length, "initial_cost": fields.initial_cost,
        "initial_seconds": fields.initial_seconds, "rate": fields.rate,
        "period_seconds": fields.period_seconds, "start_time": fields.start,
        "end_time": fields.end, "extensions": ",".join(fields.extensions),
    }


async def _check_extensions_exist(uow: UnitOfWork, wanted: Iterable[str]) -> None:
    names = set(wanted) - {ALL_EXTENSIONS}
    if not names:
        return
    known = set(
        (await uow.session.execute(select(Extension.number).where(Extension.number.in_(names))))
        .scalars()
        .all()
    )
    missing = sorted(names - known)
    if missing:
        raise BadRequest(
            f"extensions: no such extension {', '.join(missing)}", field="extensions"
        )


def _known_id(rate_id: int) -> None:
    # An id outside the column's range names no rate; asking the database would overflow.
    if not 1 <= rate_id <= MAX_ID:
        raise UnknownRate(f"rate {rate_id} does not exist", field="id")


async def add_rate(ctx: BillingContext, fields: RateFields) -> RateView:
    async with ctx.uow() as uow:
        await _check_extensions_exist(uow, fields.extensions)
        now = (await billing_settings(uow)).local(ctx.clock())
        row = Rate(created_at=now, **_columns(fields))
        uow.session.add(row)
        await uow.session.flush()
        await bump_rates_version(uow)
        await uow.commit()
        return RateView(row.id, fields)


async def edit_rate(ctx: BillingContext, rate_id: int, **changes: object) -> RateView:
    """Change some fields of a rate; the result is validated as a whole."""
    _known_id(rate_id)
    async with ctx.uow() as uow:
        row = await uow.session.get(Rate, rate_id, with_for_update=True)
        if row is None:
            raise UnknownRate(f"rate {rate_id} does not exist", field="id")
        fields = _fields_of(row).with_changes(**{k: v for k, v in changes.items() if v is not None})
        await _check_extensions_exist(uow, fields.extensions)
        for column, value in _columns(fields).items():
            setattr(row, column, value)
        await bump_rates_version(uow)
        await uow.commit()
        return RateView(row.id, fields)


async def delete_rate(ctx: BillingContext, rate_id: int) -> None:
    _known_id(rate_id)
    async with ctx.uow() as uow:
        result = await uow.session.execute(delete(Rate).where(Rate.id == rate_id))
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise UnknownRate(f"rate {rate_id} does not exist", field="id")
        await bump_rates_version(uow)
        await uow.commit()


async def get_rate(ctx: BillingContext, rate_id: int) -> RateView:
    _known_id(rate_id)
    async with ctx.uow() as uow:
        row = await uow.session.get(Rate, rate_id)
        if row is None:
            raise UnknownRate(f"rate {rate_id} does not exist", field="id")
        return RateView(row.id, _fields_of(row))


async def list_rates(ctx: BillingContext) -> list[RateView]:
    async with ctx.uow() as uow:
        rows = (await uow.session.execute(select(Rate).order_by(Rate.id))).scalars().all()
        return [RateView(r.id, _fields_of(r)) for r in rows]


def rate_book(ctx: BillingContext, session: Session, version: int) -> RateBook:
    """The rate book, rebuilt only when the ledger's rates_version has moved on."""
    cache = ctx.rate_cache
    if cache.version != version:
        cache.book = RateBook(_enabled_rates(session))
        cache.version = version
    return cache.book


# Money as stored (integer units): each distinct amount becomes one shared Decimal.
_BOOK_ROWS = select(
    Rate.id, Rate.prefix, Rate.number_length, type_coerce(Rate.initial_cost, BigInteger),
    Rate.initial_seconds, type_coerce(Rate.rate, BigInteger), Rate.period_seconds,
    Rate.start_time, Rate.end_time, Rate.extensions, Rate.remark,
).where(Rate.enabled.is_(True)).execution_options(yield_per=2000)


def _enabled_rates(session: Session) -> Iterator[RatingRate]:
    """Every enabled rate as the rating core sees it, read a slice of rows at a time.

    A deck repeats a few amounts, windows, extension lists and tariffs many times over: each
    distinct one is built once and shared by every rate that has it (100,000 rates take tens
    of MB instead of a few hundred, docs/benchmarks.md). They are all immutable."""
    amounts: dict[int, Decimal] = {}
    tariffs: dict[Tariff, Tariff] = {}
    windows: dict[tuple[str, str], TimeWindow] = {}
    extension_sets: dict[str, frozenset[str]] = {}
    names: dict[str, str] = {}  # extension numbers and remarks

    def amount(units: int) -> Decimal:
        value = amounts.get(units)
        if value is None:
            value = amounts[units] = from_units(units)
        return value

    def extensions_of(text: str) -> frozenset[str]:
        found = extension_sets.get(text)
        if found is None:
            # from a set, so the frozenset's table is sized for its members (not grown)
            found = extension_sets[text] = frozenset(
                {names.setdefault(e, e) for e in text.split(",") if e})
        return found

    for (rate_id, prefix, length, initial_cost, initial_seconds, rate, period, start, end,
         extensions, remark) in session.execute(_BOOK_ROWS):
        tariff = Tariff(amount(initial_cost), initial_seconds, amount(rate), period)
        tariff = tariffs.setdefault(tariff, tariff)
        window = windows.get((start, end))
        if window is None:
            window = windows[start, end] = TimeWindow(parse_hhmm(start, "start"),
                                                      parse_hhmm(end, "end"))
        yield RatingRate(id=rate_id, prefix=prefix, number_length=length, tariff=tariff,
                         window=window, extensions=extensions_of(extensions), enabled=True,
                         remark=names.setdefault(remark, remark))


# --- a carrier's deck as CSV ---------------------------------------------------------------


def rates_to_csv(rates: Iterable[RateView]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for view in rates:
        row = public_values(view.fields)
        row |= {"enabled": "1" if row["enabled"] else "0", "initial_cost": fmt(row["initial_cost"]),
                "rate": fmt(row["rate"]), "extensions": ",".join(row["extensions"])}
        writer.writerow([row[c] for c in CSV_COLUMNS])
    return out.getvalue()


def parse_rates_csv(text: str) -> list[RateFields]:
    """Every row of a deck, validated; BadRequest names the first bad line and field."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = set(CSV_COLUMNS) - {"enabled", "remark"} - set(reader.fieldnames or ())
    if missing:
        raise BadRequest(f"csv: missing columns {', '.join(sorted(missing))}", field="file")
    deck = []
    for line, row in enumerate(reader, start=2):
        try:
            enabled = (row.get("enabled") or "1").strip().lower()
            if enabled not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise BadRequest(f"enabled: {enabled!r} is not a yes/no value", field="enabled")
            columns = {c: row.get(c) for c in CSV_COLUMNS}
            columns |= {"extensions": row["extensions"] or "", "remark": row.get("remark") or "",
                        "enabled": enabled in ("1", "true", "yes", "on")}
            # every column passed, a short row's None too (refused by its field's check)
            deck.append(check_rate_fields(**{RATE_FIELD_NAMES[c]: v for c, v in columns.items()}))
        except BadRequest as exc:
            raise BadRequest(f"csv line {line}: {exc.message}", field=exc.field) from None
    return deck


async def import_rates(ctx: BillingContext, text: str, *, replace: bool = False) -> int:
    """Add every rate of a deck (or replace all rates with it), all or nothing."""
    deck = parse_rates_csv(text)
    async with ctx.uow() as uow:
        await _check_extensions_exist(uow, {e for f in deck for e in f.extensions})
        now = (await billing_settings(uow)).local(ctx.clock())
        if replace:
            await uow.session.execute(delete(Rate))
        rows = [{**_columns(f), "created_at": now} for f in deck]
        for start in range(0, len(rows), 5000):
            await uow.session.execute(insert(Rate), rows[start : start + 5000])
        await bump_rates_version(uow)
        await uow.commit()
    return len(deck)


# --- quotes ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Quote:
    extension: str
    number: str
    at: time
    rate: RatingRate | None
    seconds: int
    cost: Decimal | None
    funds: Decimal
    limit_seconds: int | None  # None: no rate applies, so nothing limits the call


async def quote(
    ctx: BillingContext, extension: str, number: str, *, at: str | None = None, seconds: int = 60
) -> Quote:
    """Which rate applies to a call, what `seconds` of it cost, and the time the funds buy."""
    if not is_digits(number) or len(number) > MAX_NUMBER_DIGITS:
        raise BadRequest(f"number: {number!r} must be digits", field="number")
    seconds = whole_number(seconds, "seconds", minimum=0, maximum=MAX_QUOTE_SECONDS)
    async with ctx.uow() as uow:
        ext = (await uow.session.execute(
            select(Extension).where(Extension.number == extension))).scalar_one_or_none()
        if ext is None:
            raise UnknownExtension(f"extension {extension} does not exist", field="extension")
        settings = await billing_settings(uow)
        when = parse_hhmm(at, "at") if at else settings.local(ctx.clock()).time()
        book = await uow.session.run_sync(lambda s: rate_book(ctx, s, settings.rates_version))
        available = funds(ext.balance, ext.credit_limit, ext.reserved)
    rate = book.select(extension, number, when)
    if rate is None:
        return Quote(extension, number, when, None, seconds, None, available, None)
    # The gate's own decision (services/funds.py, services/caps.py), so the quote says what
    # the gate would.
    limit = capped_allowance(rate.tariff, available, caps_of(ext, settings), ext,
                             settings.local(ctx.clock()),
                             ctx.config.billing.max_call_seconds).allowance.limit_seconds
    return Quote(extension, number, when, rate, seconds, cost(rate.tariff, seconds), available,
                 limit)


