"""The holiday calendar over the API: list, add, remove."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from coobill.services import holidays
from coobill.services.holidays import HolidayView
from coobill.web.api.rate_schemas import HolidayIn, HolidayOut
from coobill.web.auth import BillingUser, check_csrf, portal

router = APIRouter(prefix="/api", tags=["holidays"], dependencies=[Depends(check_csrf)])


def _out(view: HolidayView) -> HolidayOut:
    return HolidayOut(id=view.id, day=view.day.isoformat(), yearly=view.yearly, name=view.name)


@router.get("/holidays")
async def list_holidays(request: Request, user: BillingUser) -> list[HolidayOut]:
    return [_out(v) for v in await holidays.list_holidays(portal(request).ctx)]


@router.post("/holidays", status_code=201, responses={400: {}})
async def add_holiday(body: HolidayIn, request: Request, user: BillingUser) -> HolidayOut:
    """Errors name the field: day (not a date, or a holiday already), name."""
    return _out(await holidays.add_holiday(portal(request).ctx, body.day, yearly=body.yearly,
                                           name=body.name))


@router.delete("/holidays/{holiday_id}", status_code=204, responses={404: {}})
async def remove_holiday(holiday_id: int, request: Request, user: BillingUser) -> None:
    await holidays.remove_holiday(portal(request).ctx, holiday_id=holiday_id)
