"""Rates: add, edit, delete, list, quote; the rate book in memory. (A deck's import and
export, dated or not: services/rate_decks.py.)"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Row, delete, select, type_coerce
from sqlalchemy.orm import Session

from coobill.errors import BadRequest, UnknownExtension, UnknownRate
from coobill.money import from_units
from coobill.rating import (
    ALWAYS,
    Calendar,
    Holidays,
    RateBook,
    Tariff,
    TimeWindow,
    cost,
    parse_days,
    schedule_cost,
)
from coobill.rating import Rate as RatingRate
from coobill.services.bounds import MAX_ID, is_digits, whole_number
from coobill.services.caps import capped_allowance, caps_of
from coobill.services.context import BillingContext
from coobill.services.funds import funds, split_schedule
from coobill.services.rate_fields import (
    ALL_EXTENSIONS,
    RateFields,
    parse_hhmm,
    parse_moment,
)
from coobill.services.settings import billing_settings, bump_rates_version
from coobill.storage.group_commit import leave_the_loop
from coobill.storage.tables import Extension, Holiday, Rate
from coobill.storage.uow import UnitOfWork

# A dialled number (E.164 is at most 15 digits; with an outside-line prefix a few more).
MAX_NUMBER_DIGITS = 32
MAX_QUOTE_SECONDS = 86_400



@dataclass(frozen=True, slots=True)
class RateView:
    id: int
    fields: RateFields


def fields_of(row: Rate | Row[Any]) -> RateFields:
    """A rate's fields, from its ORM object or a plain row of the rate table."""
    return RateFields(
        prefix=row.prefix, number_length=row.number_length, initial_cost=row.initial_cost,
        initial_seconds=row.initial_seconds, rate=row.rate, period_seconds=row.period_seconds,
        start=row.start_time, end=row.end_time,
        extensions=tuple(e for e in row.extensions.split(",") if e),
        remark=row.remark, enabled=row.enabled, days=row.days, holidays=row.holidays,
        valid_from=row.valid_from, valid_until=row.valid_until, split=row.split,
        trunk=row.trunk or "",
    )


def columns_of(fields: RateFields) -> dict[str, object]:
    return {
        "enabled": fields.enabled, "remark": fields.remark, "prefix": fields.prefix,
        "number_length": fields.number_length, "initial_cost": fields.initial_cost,
        "initial_seconds": fields.initial_seconds, "rate": fields.rate,
        "period_seconds": fields.period_seconds, "start_time": fields.start,
        "end_time": fields.end, "extensions": ",".join(fields.extensions),
        "days": fields.days, "holidays": fields.holidays, "valid_from": fields.valid_from,
        "valid_until": fields.valid_until, "split": fields.split,
        "trunk": fields.trunk or None,
    }


async def check_extensions_exist(uow: UnitOfWork, wanted: Iterable[str]) -> None:
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
        await check_extensions_exist(uow, fields.extensions)
        now = (await billing_settings(uow)).local(ctx.clock())
        row = Rate(created_at=now, **columns_of(fields))
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
        fields = fields_of(row).with_changes(**{k: v for k, v in changes.items() if v is not None})
        await check_extensions_exist(uow, fields.extensions)
        for column, value in columns_of(fields).items():
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
        return RateView(row.id, fields_of(row))


async def list_rates(ctx: BillingContext) -> list[RateView]:
    async with ctx.uow() as uow:
        rows = (await uow.session.execute(select(Rate).order_by(Rate.id))).scalars().all()
        return [RateView(r.id, fields_of(r)) for r in rows]


def rate_book(ctx: BillingContext, session: Session, version: int) -> RateBook:
    """The rate book, rebuilt only when the ledger's rates_version has moved on."""
    cache = ctx.rate_cache
    if cache.version != version:
        # Every enabled rate is read: too long for a transaction the event loop runs (the
        # gate's), which the ledger thread then runs instead.
        leave_the_loop(session)
        holidays = holiday_calendar(session)
        cache.book = RateBook(_enabled_rates(session, _SELL_ROWS), holidays)
        cache.buy_book = RateBook(_enabled_rates(session, _BUY_ROWS), holidays)
        cache.version = version
    return cache.book


def buy_book(ctx: BillingContext, session: Session, version: int) -> RateBook:
    """The buy rates (by trunk), rebuilt with the rate book."""
    rate_book(ctx, session, version)
    return ctx.rate_cache.buy_book


def holiday_calendar(session: Session) -> Holidays:
    """The PBX's holiday calendar as the rating core sees it."""
    return Holidays.of(session.execute(select(Holiday.day, Holiday.yearly)).tuples())


# Money as stored (integer units): each distinct amount becomes one shared Decimal.
_BOOK_ROWS = select(
    Rate.id, Rate.prefix, Rate.number_length, type_coerce(Rate.initial_cost, BigInteger),
    Rate.initial_seconds, type_coerce(Rate.rate, BigInteger), Rate.period_seconds,
    Rate.start_time, Rate.end_time, Rate.extensions, Rate.remark, Rate.days, Rate.holidays,
    Rate.valid_from, Rate.valid_until, Rate.split, Rate.trunk,
).where(Rate.enabled.is_(True)).execution_options(yield_per=2000)
_SELL_ROWS = _BOOK_ROWS.where(Rate.trunk.is_(None))
_BUY_ROWS = _BOOK_ROWS.where(Rate.trunk.is_not(None))


def _enabled_rates(session: Session, query: Any) -> Iterator[RatingRate]:
    """Every enabled rate as the rating core sees it, read a slice of rows at a time.

    A deck repeats a few amounts, windows, extension lists and tariffs many times over: each
    distinct one is built once and shared by every rate that has it (100,000 rates take tens
    of MB instead of a few hundred, docs/benchmarks.md). They are all immutable."""
    amounts: dict[int, Decimal] = {}
    tariffs: dict[Tariff, Tariff] = {}
    windows: dict[tuple[str, str], TimeWindow] = {}
    extension_sets: dict[str, frozenset[str]] = {}
    names: dict[str, str] = {}  # extension numbers and remarks
    calendars: dict[tuple[object, ...], Calendar] = {("", "any", None, None): ALWAYS}

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

    def calendar_of(key: tuple[str, str, datetime | None, datetime | None]) -> Calendar:
        found = calendars.get(key)
        if found is None:
            days, holidays, valid_from, valid_until = key
            found = calendars[key] = Calendar(parse_days(days), holidays,  # type: ignore[arg-type]
                                              valid_from, valid_until)
        return found

    for (rate_id, prefix, length, initial_cost, initial_seconds, rate, period, start, end,
         extensions, remark, days, holidays, valid_from, valid_until, split, trunk
         ) in session.execute(query):
        tariff = Tariff(amount(initial_cost), initial_seconds, amount(rate), period)
        tariff = tariffs.setdefault(tariff, tariff)
        window = windows.get((start, end))
        if window is None:
            window = windows[start, end] = TimeWindow(parse_hhmm(start, "start"),
                                                      parse_hhmm(end, "end"))
        yield RatingRate(id=rate_id, prefix=prefix, number_length=length, tariff=tariff,
                         # a buy rate matches its trunk where a sell rate has extensions
                         window=window,
                         extensions=extensions_of(trunk if trunk else extensions), enabled=True,
                         remark=names.setdefault(remark, remark),
                         calendar=calendar_of((days, holidays, valid_from, valid_until)),
                         split=split)


# --- quotes ---------------------------------------------------------------------------------


def _quote_moment(at: str | None, now: datetime) -> datetime:
    """A quote's moment: now; "HH:MM" today; or "YYYY-MM-DD HH:MM"."""
    if not at:
        return now
    if len(at.strip()) <= 5:
        hhmm = parse_hhmm(at, "at")
        return now.replace(hour=hhmm.hour, minute=hhmm.minute, second=0, microsecond=0)
    moment = parse_moment(at, "at")
    assert moment is not None
    return moment



@dataclass(frozen=True, slots=True)
class Quote:
    extension: str
    number: str
    at: datetime  # the call's local moment
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
        when = _quote_moment(at, settings.local(ctx.clock()))
        book = await uow.session.run_sync(lambda s: rate_book(ctx, s, settings.rates_version))
        available = funds(ext.balance, ext.credit_limit, ext.reserved)
    rate = book.select(extension, number, when)
    if rate is None:
        return Quote(extension, number, when, None, seconds, None, available, None)
    # The gate's own decision (services/funds.py, services/caps.py), so the quote says what
    # the gate would.
    cap = ctx.config.billing.max_call_seconds
    schedule = split_schedule(book, rate, extension, number, settings.local,
                              when.replace(tzinfo=settings.zone()), cap)
    limit = capped_allowance(rate.tariff, available, caps_of(ext, settings), ext,
                             settings.local(ctx.clock()), cap, schedule).allowance.limit_seconds
    price = schedule_cost(schedule, seconds) if schedule else cost(rate.tariff, seconds)
    return Quote(extension, number, when, rate, seconds, price, available,
                 limit)


