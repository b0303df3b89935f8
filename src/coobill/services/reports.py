"""Recharge records, call records and statistics, filtered as the portal and CLI ask."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    SQLColumnExpression,
    func,
    literal_column,
    or_,
    select,
    text,
    tuple_,
    type_coerce,
)

from coobill.errors import BadRequest
from coobill.money import ZERO, from_units
from coobill.services.context import BillingContext
from coobill.storage.tables import Call, Extension, Recharge, RefusedCall
from coobill.storage.uow import UnitOfWork

PERIODS = ("day", "month", "year")
# Records an export reads at a time (iter_calls, iter_recharges).
EXPORT_BATCH = 2000
# The extension of a statistics row that totals every extension counted (the appliance's "All").
ALL_EXTENSIONS = "*"


# A period's end is the day after its last: 9999-12-31 has none (datetime overflows).
LAST_DAY = date(9998, 12, 31)
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_day(text: str | None, field: str) -> date | None:
    if text is None or text == "":
        return None
    # fromisoformat alone also takes 20240101 and 2024-W01-1; the forms say YYYY-MM-DD.
    if not _DAY.fullmatch(text.strip()):
        raise BadRequest(f"{field}: {text!r} is not a date YYYY-MM-DD", field=field)
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise BadRequest(f"{field}: {text!r} is not a date YYYY-MM-DD", field=field) from None
    if day > LAST_DAY:
        raise BadRequest(f"{field}: {text!r} is after {LAST_DAY.isoformat()}", field=field)
    return day


@dataclass(frozen=True, slots=True)
class Period:
    """Whole local days, both ends included; either end may be open."""

    first: date | None = None
    last: date | None = None

    @classmethod
    def parse(cls, first: str | None, last: str | None) -> Period:
        period = cls(parse_day(first, "from"), parse_day(last, "to"))
        if period.first and period.last and period.first > period.last:
            raise BadRequest("to: must not be before from", field="to")
        return period

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        start = datetime.combine(self.first, time()) if self.first else None
        end = datetime.combine(self.last + timedelta(days=1), time()) if self.last else None
        return start, end


def _within(query: Select[Any], column: SQLColumnExpression[Any], period: Period) -> Select[Any]:
    start, end = period.bounds()
    if start is not None:
        query = query.where(column >= start)
    if end is not None:
        query = query.where(column < end)
    return query


@dataclass(frozen=True, slots=True)
class RechargeRecord:
    time: datetime
    extension: str
    name: str
    balance_before: Decimal
    amount: Decimal
    balance_after: Decimal
    who: str
    kind: str = "recharge"  # or "fee": a recurring fee charged (services/fees.py)


def _recharges(period: Period, keyword: str | None) -> Select:  # type: ignore[type-arg]
    """The recharges wanted, from the recharge table alone: the keyword picks extensions
    first (a small table), so counting and paging never join a million rows."""
    query = _within(select(Recharge.id), Recharge.created_at, period)
    if keyword:
        # icontains: LIKE is case-sensitive on PostgreSQL but not on SQLite; wildcards literal.
        word = keyword.strip()
        query = query.where(Recharge.extension_id.in_(
            select(Extension.id).where(or_(Extension.number.icontains(word, autoescape=True),
                                           Extension.name.icontains(word, autoescape=True)))))
    return query


_NEWEST_RECHARGES = (Recharge.created_at.desc(), Recharge.id.desc())


def _with_extension(ids: Select) -> Select:  # type: ignore[type-arg]
    """The recharges of `ids` (a page of them), newest first, each with its extension."""
    return (select(Recharge, Extension.number, Extension.name)
            .join(Extension, Extension.id == Recharge.extension_id)
            .where(Recharge.id.in_(ids))
            .order_by(*_NEWEST_RECHARGES))


def _recharge_record(row: Any) -> RechargeRecord:
    r, number, name = row
    return RechargeRecord(r.created_at, number, name, r.balance_before, r.amount,
                          r.balance_after, r.who, r.kind)


async def list_recharges(
    ctx: BillingContext, period: Period = Period(), keyword: str | None = None,
    *, offset: int = 0, limit: int | None = None,
) -> tuple[list[RechargeRecord], int]:
    wanted = _recharges(period, keyword)
    async with ctx.uow.read() as uow:
        total = (await uow.session.execute(
            select(func.count()).select_from(wanted.subquery()))).scalar_one()
        page = wanted.order_by(*_NEWEST_RECHARGES).offset(offset)
        if limit is not None:
            page = page.limit(limit)
        rows = (await uow.session.execute(_with_extension(page))).tuples().all()
    return [_recharge_record(row) for row in rows], int(total)


async def iter_recharges(
    ctx: BillingContext, period: Period = Period(), keyword: str | None = None,
    *, batch: int = EXPORT_BATCH,
) -> AsyncIterator[list[RechargeRecord]]:
    """Every recharge `list_recharges` finds, newest first, a batch at a time: a short read
    of its own for each (keyset on time and id), so an export of a million records holds
    neither a million rows in memory nor a read transaction open for its whole length."""
    wanted = _recharges(period, keyword).order_by(*_NEWEST_RECHARGES)
    async for rows in _keyset(ctx, wanted, (Recharge.created_at, Recharge.id),
                              lambda row: (row[0].created_at, row[0].id),
                              _with_extension, batch):
        yield [_recharge_record(row) for row in rows]


async def _keyset(
    ctx: BillingContext, wanted: Select, key: tuple[Any, ...],  # type: ignore[type-arg]
    key_of: Callable[[Any], tuple[Any, ...]], rows_of: Callable[[Select], Select],  # type: ignore[type-arg]
    batch: int,
) -> AsyncIterator[Sequence[Any]]:
    """The rows of `wanted` (ordered by `key`, descending) a batch at a time, each batch a
    read of its own that starts below the last row of the one before."""
    after: tuple[Any, ...] | None = None
    while True:
        page = wanted if after is None else wanted.where(tuple_(*key) < after)
        async with ctx.uow.read() as uow:
            rows = (await uow.session.execute(rows_of(page.limit(batch)))).all()
        if not rows:
            return
        yield rows
        after = key_of(rows[-1])


@dataclass(frozen=True, slots=True)
class CallRecord:
    uniqueid: str
    start: datetime | None
    answer: datetime | None
    end: datetime | None
    extension: str
    name: str
    number: str
    billable_seconds: int
    trunk: str
    rate: str
    cost: Decimal
    disposition: str
    gated: bool


# A keyword this long or longer is looked up in the trigram index of migration 0006 (a
# trigram is three characters); a shorter one matches so many calls that reading them in
# time order finds a page at once.
TRIGRAM = 3


# The call records' outcome filter (the portal's answered / unanswered; refused calls are
# services/refused.py's own records).
OUTCOMES = ("", "answered", "unanswered")


def check_outcome(outcome: str | None) -> str:
    if (outcome or "") not in (*OUTCOMES, "refused"):
        raise BadRequest("outcome: must be answered, unanswered or refused", field="outcome")
    return outcome or ""


async def _calls(uow: UnitOfWork, period: Period, keyword: str | None,
                 extensions: Sequence[str], outcome: str = "") -> Select:  # type: ignore[type-arg]
    """The ids of the calls wanted. The keyword is part of the caller's extension, the
    caller ID's name or the number dialled, or part of the name the billing user gave the
    extension."""
    query = _within(select(Call.id), Call.start, period)
    if outcome == "answered":
        query = query.where(Call.disposition == "ANSWERED")
    elif outcome == "unanswered":
        query = query.where(Call.disposition != "ANSWERED")
    if keyword:
        word = keyword.strip()
        # the extension's name as the billing user set it, not only the caller ID's: a small
        # table, asked first, so the calls' own index on the caller can serve the match
        named = (await uow.session.execute(select(Extension.number).where(
            Extension.name.icontains(word, autoescape=True)))).scalars().all()
        query = query.where(or_(await _contains(uow, word), Call.caller_extension.in_(named)))
    if extensions:
        query = query.where(Call.caller_extension.in_(list(extensions)))
    return query


async def _contains(uow: UnitOfWork, word: str) -> ColumnElement[bool]:
    """Calls whose extension, caller name or number dialled contains `word`, any case."""
    if len(word) >= TRIGRAM and uow.session.bind.dialect.name == "sqlite" and (
            await uow.session.execute(text(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'call_search'"
            ))).first():
        phrase = '"' + word.replace('"', '""') + '"'  # FTS5: a phrase, nothing parsed in it
        return Call.id.in_(select(literal_column("rowid")).select_from(text("call_search"))
                           .where(text("call_search MATCH :phrase").bindparams(phrase=phrase)))
    # PostgreSQL: with pg_trgm (migration 0006) these ILIKEs use its GIN indexes.
    return or_(Call.caller_extension.icontains(word, autoescape=True),
               Call.caller_name.icontains(word, autoescape=True),
               Call.dialled_number.icontains(word, autoescape=True))


# A call record's columns, in CallRecord's order, then the id the exports page by: plain
# rows, not ORM objects (a million-record export builds no identity map).
_CALL_COLUMNS = (Call.uniqueid, Call.start, Call.answer, Call.end, Call.caller_extension,
                 Call.caller_name, Call.dialled_number, Call.billable_seconds, Call.trunk,
                 Call.rate_label, Call.cost, Call.disposition, Call.gated, Call.id)


def _call_record(row: Any) -> CallRecord:
    return CallRecord(*row[:-1])


# Newest first, as the (start, id) index reads backwards: with no filter, a page deep in a
# million calls is found from the index alone (its ids), and only its own rows are read
# (_rows_of). A call without a start (a CDR that had none) sorts as each database puts NULL:
# last on SQLite, first on PostgreSQL.
_NEWEST_CALLS = (Call.start.desc(), Call.id.desc())


def _rows_of(ids: Select) -> Select:  # type: ignore[type-arg]
    return select(*_CALL_COLUMNS).where(Call.id.in_(ids)).order_by(*_NEWEST_CALLS)


async def list_calls(
    ctx: BillingContext, period: Period = Period(), keyword: str | None = None,
    *, extensions: Sequence[str] = (), offset: int = 0, limit: int | None = None,
    outcome: str = "",
) -> tuple[list[CallRecord], int]:
    async with ctx.uow.read() as uow:
        wanted = await _calls(uow, period, keyword, extensions, check_outcome(outcome))
        total = (await uow.session.execute(
            select(func.count()).select_from(wanted.subquery()))).scalar_one()
        page = wanted.order_by(*_NEWEST_CALLS).offset(offset)
        if limit is not None:
            page = page.limit(limit)
        rows = (await uow.session.execute(_rows_of(page))).all()
    return [_call_record(row) for row in rows], int(total)


async def iter_calls(
    ctx: BillingContext, period: Period = Period(), keyword: str | None = None,
    *, extensions: Sequence[str] = (), batch: int = EXPORT_BATCH,
) -> AsyncIterator[list[CallRecord]]:
    """Every call `list_calls` finds, in its order, a batch at a time (see iter_recharges):
    those with a start by (start, id) downwards; those without one by id, where the
    database sorts NULL (after them on SQLite, before them on PostgreSQL)."""
    async with ctx.uow.read() as uow:
        wanted = await _calls(uow, period, keyword, extensions)
    nulls_first = ctx.uow.dialect == "postgresql"
    phases = (_undated, _dated) if nulls_first else (_dated, _undated)
    for phase in phases:
        async for records in phase(ctx, wanted, batch):
            yield records


async def _dated(ctx: BillingContext, wanted: Select, batch: int  # type: ignore[type-arg]
                 ) -> AsyncIterator[list[CallRecord]]:
    dated = wanted.where(Call.start.is_not(None)).order_by(*_NEWEST_CALLS)
    async for rows in _keyset(ctx, dated, (Call.start, Call.id),
                              lambda row: (row.start, row.id), _rows_of, batch):
        yield [_call_record(row) for row in rows]


async def _undated(ctx: BillingContext, wanted: Select, batch: int  # type: ignore[type-arg]
                   ) -> AsyncIterator[list[CallRecord]]:
    undated = wanted.where(Call.start.is_(None)).order_by(Call.id.desc())
    async for rows in _keyset(ctx, undated, (Call.id,), lambda row: (row.id,), _rows_of, batch):
        yield [_call_record(row) for row in rows]


@dataclass(frozen=True, slots=True)
class StatsRow:
    period: str
    extension: str
    calls: int
    answered: int
    total_seconds: int
    cost: Decimal
    refused: int = 0  # the gate's DENYs (services/refused.py), not among `calls`

    @property
    def average_seconds(self) -> int:
        """Average talk time of the answered calls, whole seconds."""
        return round(self.total_seconds / self.answered) if self.answered else 0


def _day_range(query: Select[Any], day: SQLColumnExpression[Any], period: Period) -> Select[Any]:
    """Whole days as the calendar day of the call's start: the same calls as `_within`."""
    if period.first is not None:
        query = query.where(day >= period.first.isoformat())
    if period.last is not None:
        query = query.where(day <= period.last.isoformat())
    return query


def _label(dialect: str, day, by: str):  # type: ignore[no-untyped-def]
    """A month's or year's label from a day: text on SQLite, a date on PostgreSQL."""
    if dialect == "postgresql":
        return func.to_char(day, {"month": "YYYY-MM", "year": "YYYY"}[by])
    return func.substr(day, 1, {"month": 7, "year": 4}[by])


def combined(rows: Sequence[StatsRow]) -> list[StatsRow]:
    """One row per period for all the extensions together, as the appliance's "All"."""
    totals: dict[str, list[int | Decimal]] = defaultdict(lambda: [0, 0, 0, ZERO, 0])
    for row in rows:
        total = totals[row.period]
        total[0] += row.calls
        total[1] += row.answered
        total[2] += row.total_seconds
        total[3] += row.cost
        total[4] += row.refused
    return [
        StatsRow(p, ALL_EXTENSIONS, int(c), int(a), int(s), Decimal(m), int(r))
        for p, (c, a, s, m, r) in sorted(totals.items())
    ]


async def statistics(
    ctx: BillingContext, by: str = "day", period: Period = Period(),
    extensions: Sequence[str] = (), *, per_extension: bool = False,
) -> list[StatsRow]:
    """Per period: calls, answered calls, talk time and cost of every extension counted
    together (extension ALL_EXTENSIONS, as the appliance's "All"), or with `per_extension`
    one row per period and extension.

    Calls are grouped by `date(start)` and extension, months and years summed from those
    days. Migration 0002 makes that grouping cheap: on SQLite an index on exactly
    (date(start), caller_extension, billable_seconds, cost), read in order with no sort (so
    the period is matched on date(start) too); on PostgreSQL statistics on date(start), so
    the planner hashes the ~days x extensions groups instead of sorting every call (the
    period stays on `start`, which ix_call_start_id serves for short ranges)."""
    if by not in PERIODS:
        raise BadRequest("by: must be day, month or year", field="by")
    dialect = ctx.uow.dialect
    day = func.date(Call.start).label("day")
    answered = func.sum((Call.billable_seconds > 0).cast(type_=Call.billable_seconds.type))
    query = select(
        day, Call.caller_extension, func.count().label("calls"), answered.label("answered"),
        func.sum(Call.billable_seconds).label("seconds"),
        func.sum(type_coerce(Call.cost, BigInteger)).label("cost"),
    )
    if dialect == "postgresql":
        query = _within(query, Call.start, period)
    else:
        query = _day_range(query, func.date(Call.start), period)
    if extensions:
        query = query.where(Call.caller_extension.in_(list(extensions)))
    query = query.group_by(func.date(Call.start), Call.caller_extension)
    if by == "day":
        query = query.order_by(func.date(Call.start), Call.caller_extension)
    else:
        days = query.subquery()
        bucket = _label(dialect, days.c.day, by).label("bucket")
        query = (
            select(bucket, days.c.caller_extension, func.sum(days.c.calls),
                   func.sum(days.c.answered), func.sum(days.c.seconds), func.sum(days.c.cost))
            .group_by(bucket, days.c.caller_extension)
            .order_by(bucket, days.c.caller_extension)
        )
    async with ctx.uow.read() as uow:
        rows = (await uow.session.execute(query)).tuples().all()
        refusals = (await uow.session.execute(
            _refused_counts(dialect, by, period, extensions))).tuples().all()
    split = [
        StatsRow(str(b), ext, int(n), int(a or 0), int(s or 0), from_units(int(c or 0)))
        for b, ext, n, a, s, c in rows
    ]
    split = _with_refused(split, [(str(b), ext, int(n)) for b, ext, n in refusals])
    return split if per_extension else combined(split)


def _refused_counts(dialect: str, by: str, period: Period,
                    extensions: Sequence[str]) -> Select:  # type: ignore[type-arg]
    """The refused calls per period and extension (a small table, kept short by retention)."""
    day = func.date(RefusedCall.at)
    bucket = day if by == "day" else _label(dialect, day, by)
    query = _within(select(bucket.label("bucket"), RefusedCall.extension, func.count()),
                    RefusedCall.at, period)
    if extensions:
        query = query.where(RefusedCall.extension.in_(list(extensions)))
    return query.group_by(bucket, RefusedCall.extension)


def _with_refused(rows: list[StatsRow], refusals: list[tuple[str, str, int]]) -> list[StatsRow]:
    """The rows with their refused counts; a period and extension that only had refusals
    gets a row of its own."""
    counts = {(b, ext): n for b, ext, n in refusals}
    merged = [replace(r, refused=counts.pop((r.period, r.extension), 0)) for r in rows]
    merged += [StatsRow(b, ext, 0, 0, 0, ZERO, n) for (b, ext), n in counts.items()]
    return sorted(merged, key=lambda r: (r.period, r.extension))
