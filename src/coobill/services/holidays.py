"""The PBX's holiday calendar: the dates a rate set to `--holidays only` applies on and one
set to `except` does not (rating/calendar.py). A date, or a date that comes back every year.

Changing the calendar changes which rate applies, so it moves the ledger's rates_version:
every daemon on the ledger rebuilds its rate book (holidays included) on its next call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, select

from coobill.errors import BadRequest, UnknownHoliday
from coobill.services.bounds import MAX_ID
from coobill.services.context import BillingContext
from coobill.services.rate_fields import parse_yes_no
from coobill.services.settings import bump_rates_version
from coobill.storage.tables import Holiday

MAX_NAME = 64


@dataclass(frozen=True, slots=True)
class HolidayView:
    id: int
    day: date
    yearly: bool
    name: str

    @property
    def when(self) -> str:
        """How the calendar shows it: "2026-12-25", or "every 12-25"."""
        return f"every {self.day:%m-%d}" if self.yearly else self.day.isoformat()


def parse_day(value: Any, field: str = "day") -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    text = str(value or "").strip()
    try:
        return date.fromisoformat(text) if len(text) == 10 else _not_a_date(text, field)
    except ValueError:
        return _not_a_date(text, field)


def _not_a_date(text: str, field: str) -> date:
    raise BadRequest(f"{field}: {text!r} is not a date YYYY-MM-DD", field=field)


def _view(row: Holiday) -> HolidayView:
    return HolidayView(row.id, row.day, row.yearly, row.name)


async def add_holiday(ctx: BillingContext, day: Any, *, yearly: Any = False,
                      name: Any = "") -> HolidayView:
    """Add a date to the calendar; BadRequest when it is there already."""
    when = parse_day(day)
    every_year = parse_yes_no(yearly, "yearly")
    label = str(name or "").strip()
    if len(label) > MAX_NAME:
        raise BadRequest(f"name: at most {MAX_NAME} characters", field="name")
    async with ctx.uow() as uow:
        for row in (await uow.session.execute(select(Holiday))).scalars():
            same = ((row.day.month, row.day.day) == (when.month, when.day) if every_year
                    else row.day == when and not row.yearly)
            if same and row.yearly == every_year:
                raise BadRequest(f"day: {_view(row).when} is a holiday already", field="day")
        row = Holiday(day=when, yearly=every_year, name=label)
        uow.session.add(row)
        await uow.session.flush()
        await bump_rates_version(uow)
        await uow.commit()
        return _view(row)


async def list_holidays(ctx: BillingContext) -> list[HolidayView]:
    async with ctx.uow.read() as uow:
        rows = (await uow.session.execute(
            select(Holiday).order_by(Holiday.yearly.desc(), Holiday.day, Holiday.id))).scalars()
        return [_view(r) for r in rows]


async def remove_holiday(ctx: BillingContext, *, holiday_id: Any = None,
                         day: Any = None) -> int:
    """Remove one holiday by its id, or every holiday on a date (a yearly one on its month
    and day); how many went. UnknownHoliday when none."""
    async with ctx.uow() as uow:
        if holiday_id is not None:
            if not isinstance(holiday_id, int) or not 1 <= holiday_id <= MAX_ID:
                raise UnknownHoliday(f"holiday {holiday_id} does not exist", field="id")
            ids = [holiday_id]
            label = f"holiday {holiday_id}"
        else:
            when = parse_day(day)
            rows = (await uow.session.execute(select(Holiday))).scalars().all()
            ids = [r.id for r in rows if r.day == when
                   or (r.yearly and (r.day.month, r.day.day) == (when.month, when.day))]
            label = f"no holiday on {when.isoformat()}"
        removed = 0
        if ids:
            result = await uow.session.execute(delete(Holiday).where(Holiday.id.in_(ids)))
            removed = result.rowcount  # type: ignore[attr-defined]
        if not removed:
            raise UnknownHoliday(label if day is not None else f"{label} does not exist",
                                 field="day" if day is not None else "id")
        await bump_rates_version(uow)
        await uow.commit()
        return removed
