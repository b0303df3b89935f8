"""Call statistics: calls, answered calls, talk time and cost per day, month or year."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    SQLColumnExpression,
    func,
    select,
    type_coerce,
)

from coobill.errors import BadRequest
from coobill.money import ZERO, from_units
from coobill.services.context import BillingContext
from coobill.services.reports.period import PERIODS, Period, within
from coobill.storage.tables import Call, RefusedCall

# The extension of a statistics row that totals every extension counted (the appliance's "All").
ALL_EXTENSIONS = "*"


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


def _label(dialect: str, day: SQLColumnExpression[Any], by: str) -> ColumnElement[Any]:
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
        query = within(query, Call.start, period)
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
                    extensions: Sequence[str]) -> Select[Any]:
    """The refused calls per period and extension (a small table, kept short by retention)."""
    day = func.date(RefusedCall.at)
    bucket = day if by == "day" else _label(dialect, day, by)
    query = within(select(bucket.label("bucket"), RefusedCall.extension, func.count()),
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
