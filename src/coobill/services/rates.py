"""Rates: add, edit, delete, list, import and export a deck, quote; the rate book in memory."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import time
from decimal import Decimal

from sqlalchemy import delete, insert, select

from coobill.errors import BadRequest, UnknownExtension, UnknownRate
from coobill.money import fmt
from coobill.rating import RateBook, cost, max_duration, minimum_to_connect
from coobill.rating import Rate as RatingRate
from coobill.services.context import BillingContext
from coobill.services.rate_fields import ALL_EXTENSIONS, RateFields, check_rate_fields, parse_hhmm
from coobill.services.settings import bump_rates_version, read_settings
from coobill.storage.tables import Extension, Rate
from coobill.storage.uow import UnitOfWork
from sqlalchemy.orm import Session

CSV_COLUMNS = (
    "enabled", "remark", "prefix", "length", "initial_cost", "initial_time", "rate", "period",
    "start", "end", "extensions",
)


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


async def add_rate(ctx: BillingContext, fields: RateFields) -> RateView:
    async with ctx.uow() as uow:
        await _check_extensions_exist(uow, fields.extensions)
        now = (await read_settings(uow)).local(ctx.clock())
        row = Rate(created_at=now, **_columns(fields))
        uow.session.add(row)
        await uow.session.flush()
        await bump_rates_version(uow)
        await uow.commit()
        ctx.settings_cache.value = None  # this process sees its own change at once
        return RateView(row.id, fields)


async def edit_rate(ctx: BillingContext, rate_id: int, **changes: object) -> RateView:
    """Change some fields of a rate; the result is validated as a whole."""
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
        ctx.settings_cache.value = None  # this process sees its own change at once
        return RateView(row.id, fields)


async def delete_rate(ctx: BillingContext, rate_id: int) -> None:
    async with ctx.uow() as uow:
        result = await uow.session.execute(delete(Rate).where(Rate.id == rate_id))
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise UnknownRate(f"rate {rate_id} does not exist", field="id")
        await bump_rates_version(uow)
        await uow.commit()
        ctx.settings_cache.value = None  # this process sees its own change at once


async def get_rate(ctx: BillingContext, rate_id: int) -> RateView:
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
        rows = session.execute(select(Rate).where(Rate.enabled.is_(True))).scalars()
        cache.book = RateBook(_fields_of(r).to_rating(r.id) for r in rows)
        cache.version = version
    return cache.book


# --- a carrier's deck as CSV ---------------------------------------------------------------


def rates_to_csv(rates: Iterable[RateView]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for view in rates:
        f = view.fields
        writer.writerow([
            "1" if f.enabled else "0", f.remark, f.prefix, f.number_length, fmt(f.initial_cost),
            f.initial_seconds, fmt(f.rate), f.period_seconds, f.start, f.end,
            ",".join(f.extensions),
        ])
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
            deck.append(
                check_rate_fields(
                    prefix=row["prefix"], number_length=row["length"],
                    initial_cost=row["initial_cost"], initial_seconds=row["initial_time"],
                    rate=row["rate"], period_seconds=row["period"], start=row["start"],
                    end=row["end"], extensions=row["extensions"] or "",
                    remark=row.get("remark") or "",
                    enabled=enabled in ("1", "true", "yes", "on"),
                )
            )
        except BadRequest as exc:
            raise BadRequest(f"csv line {line}: {exc.message}", field=exc.field) from None
    return deck


async def import_rates(ctx: BillingContext, text: str, *, replace: bool = False) -> int:
    """Add every rate of a deck (or replace all rates with it), all or nothing."""
    deck = parse_rates_csv(text)
    async with ctx.uow() as uow:
        await _check_extensions_exist(uow, {e for f in deck for e in f.extensions})
        now = (await read_settings(uow)).local(ctx.clock())
        if replace:
            await uow.session.execute(delete(Rate))
        rows = [{**_columns(f), "created_at": now} for f in deck]
        for start in range(0, len(rows), 5000):
            await uow.session.execute(insert(Rate), rows[start : start + 5000])
        await bump_rates_version(uow)
        await uow.commit()
        ctx.settings_cache.value = None  # this process sees its own change at once
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
    if not number.isdigit():
        raise BadRequest(f"number: {number!r} must be digits", field="number")
    if seconds < 0:
        raise BadRequest("seconds: must not be negative", field="seconds")
    async with ctx.uow() as uow:
        ext = (await uow.session.execute(
            select(Extension).where(Extension.number == extension))).scalar_one_or_none()
        if ext is None:
            raise UnknownExtension(f"extension {extension} does not exist", field="extension")
        settings = await read_settings(uow)
        when = parse_hhmm(at, "at") if at else settings.local(ctx.clock()).time()
        book = await uow.session.run_sync(lambda s: rate_book(ctx, s, settings.rates_version))
        funds = ext.balance + ext.credit_limit - ext.reserved
    rate = book.select(extension, number, when)
    if rate is None:
        return Quote(extension, number, when, None, seconds, None, funds, None)
    cap = ctx.config.billing.max_call_seconds
    limit = max_duration(rate.tariff, funds, cap) if funds >= minimum_to_connect(rate.tariff) else 0
    return Quote(extension, number, when, rate, seconds, cost(rate.tariff, seconds), funds, limit)


