"""The period a report covers (whole local days) and the paging its exports share."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, SQLColumnExpression, tuple_

from coobill.errors import BadRequest
from coobill.services.context import BillingContext

PERIODS = ("day", "month", "year")
# Records an export reads at a time (iter_calls, iter_recharges).
EXPORT_BATCH = 2000


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


def within(query: Select[Any], column: SQLColumnExpression[Any], period: Period) -> Select[Any]:
    start, end = period.bounds()
    if start is not None:
        query = query.where(column >= start)
    if end is not None:
        query = query.where(column < end)
    return query


async def keyset(
    ctx: BillingContext, wanted: Select[Any], key: tuple[Any, ...],
    key_of: Callable[[Any], tuple[Any, ...]], rows_of: Callable[[Select[Any]], Select[Any]],
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
