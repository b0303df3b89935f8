"""Recharge records, call records and statistics over the API, as JSON or CSV."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from coobill.errors import BadRequest
from coobill.services import refused, reports
from coobill.services.bounds import MAX_OFFSET
from coobill.web.api.schemas import (
    CallRecordOut,
    RechargeRecordOut,
    RecordPage,
    RefusedCallOut,
    StatsRowOut,
)
from coobill.web.auth import BillingUser, portal
from coobill.web.formatting import csv_download, csv_stream
from coobill.web.records import (
    CALL_HEADER,
    RECHARGE_HEADER,
    STATS_HEADER,
    call_json,
    cells,
    recharge_json,
    stamp,
    stats_json,
)

router = APIRouter(prefix="/api", tags=["records"])

FROM = Query("", description="First day, YYYY-MM-DD (PBX local time); empty: no bound.")
TO = Query("", description="Last day included, YYYY-MM-DD; empty: no bound.")
KEYWORD = Query("", description="Part of the extension number or its user's name.")
CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "The filtered records as CSV."}
}


@router.get("/recharges")
async def recharge_records(
    request: Request,
    user: BillingUser,
    date_from: str = FROM,
    date_to: str = TO,
    keyword: str = KEYWORD,
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(20, ge=1, le=1000),
) -> RecordPage[RechargeRecordOut]:
    records, total = await reports.list_recharges(
        portal(request).ctx,
        reports.Period.parse(date_from, date_to),
        keyword.strip() or None,
        offset=offset,
        limit=limit,
    )
    return RecordPage[RechargeRecordOut](
        total=total, items=[RechargeRecordOut(**recharge_json(r)) for r in records]
    )


@router.get("/recharges.csv", response_class=Response, responses=CSV)
async def recharge_records_csv(
    request: Request,
    user: BillingUser,
    date_from: str = FROM,
    date_to: str = TO,
    keyword: str = KEYWORD,
) -> Response:
    batches = reports.iter_recharges(
        portal(request).ctx, reports.Period.parse(date_from, date_to), keyword.strip() or None
    )

    async def rows() -> AsyncIterator[list[list[Any]]]:
        async for records in batches:
            yield [cells(recharge_json(r), RECHARGE_HEADER) for r in records]

    return csv_stream("recharge-records.csv", RECHARGE_HEADER, rows())


@router.get("/calls")
async def call_records(
    request: Request,
    user: BillingUser,
    date_from: str = FROM,
    date_to: str = TO,
    keyword: str = KEYWORD,
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(20, ge=1, le=1000),
    outcome: str = Query("", description="answered, unanswered or empty for both."),
) -> RecordPage[CallRecordOut]:
    if outcome == "refused":
        raise BadRequest("outcome: refused calls are /api/refused", field="outcome")
    records, total = await reports.list_calls(
        portal(request).ctx,
        reports.Period.parse(date_from, date_to),
        keyword.strip() or None,
        offset=offset,
        limit=limit,
        outcome=outcome,
    )
    return RecordPage[CallRecordOut](
        total=total, items=[CallRecordOut(**call_json(c)) for c in records]
    )


@router.get("/refused")
async def refused_calls(
    request: Request,
    user: BillingUser,
    date_from: str = FROM,
    date_to: str = TO,
    keyword: str = Query("", description="Part of the extension or the number."),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(20, ge=1, le=1000),
) -> RecordPage[RefusedCallOut]:
    """The calls the gate refused (every DENY), newest first."""
    first, last = reports.Period.parse(date_from, date_to).bounds()
    records, total = await refused.list_refused(
        portal(request).ctx, first, last, keyword.strip() or None, offset=offset, limit=limit)
    return RecordPage[RefusedCallOut](total=total, items=[RefusedCallOut(
        date=stamp(r.at), extension=r.extension, callee=r.number, reason=r.reason,
        latency_ms=str(r.latency_ms), uniqueid=r.uniqueid) for r in records])


@router.get("/calls.csv", response_class=Response, responses=CSV)
async def call_records_csv(
    request: Request,
    user: BillingUser,
    date_from: str = FROM,
    date_to: str = TO,
    keyword: str = KEYWORD,
) -> Response:
    batches = reports.iter_calls(
        portal(request).ctx, reports.Period.parse(date_from, date_to), keyword.strip() or None
    )

    async def rows() -> AsyncIterator[list[list[Any]]]:
        async for records in batches:
            yield [cells(call_json(c), CALL_HEADER) for c in records]

    return csv_stream("call-records.csv", CALL_HEADER, rows())


async def _statistics(
    request: Request, date_from: str, date_to: str, by: str, extension: list[str], split: bool
) -> list[dict[str, object]]:
    rows = await reports.statistics(
        portal(request).ctx,
        by,
        reports.Period.parse(date_from, date_to),
        extension,
        per_extension=split,
    )
    return [stats_json(r) for r in rows]


BY = Query("day", description="day, month or year.")
EXTENSIONS = Query([], description="Extensions to count; none: all of them.")
SPLIT = Query(False, description="One row per extension instead of one per period.")


@router.get("/statistics")
async def statistics(
    request: Request,
    user: BillingUser,
    date_from: str = FROM,
    date_to: str = TO,
    by: str = BY,
    extension: list[str] = EXTENSIONS,
    split: bool = SPLIT,
) -> list[StatsRowOut]:
    rows = await _statistics(request, date_from, date_to, by, extension, split)
    return [StatsRowOut.model_validate(r) for r in rows]


@router.get("/statistics.csv", response_class=Response, responses=CSV)
async def statistics_csv(
    request: Request,
    user: BillingUser,
    date_from: str = FROM,
    date_to: str = TO,
    by: str = BY,
    extension: list[str] = EXTENSIONS,
    split: bool = SPLIT,
) -> Response:
    rows = await _statistics(request, date_from, date_to, by, extension, split)
    return csv_download("statistics.csv", STATS_HEADER, (cells(r, STATS_HEADER) for r in rows))
