"""Recharge records, call records and statistics over the API, as JSON or CSV."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from coobill.errors import BadRequest
from coobill.services import refused, reports
from coobill.web.api.paging import LIMIT, OFFSET
from coobill.web.api.record_schemas import (
    CallRecordOut,
    RechargeRecordOut,
    RecordPage,
    RefusedCallOut,
    StatsRowOut,
    TrunkRowOut,
)
from coobill.web.auth import BillingUser, portal
from coobill.web.formatting import csv_download, csv_stream
from coobill.web.records import (
    CALL_HEADER,
    RECHARGE_HEADER,
    STATS_HEADER,
    TRUNK_HEADER,
    call_json,
    cells,
    recharge_json,
    stamp,
    stats_json,
    trunk_json,
)

router = APIRouter(prefix="/api", tags=["records"])

FROM = Query("", description="First day, YYYY-MM-DD (PBX local time); empty: no bound.")
TO = Query("", description="Last day included, YYYY-MM-DD; empty: no bound.")
KEYWORD = Query("", description="Part of the extension number or its user's name.")
Record = TypeVar("Record")
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
    offset: int = OFFSET,
    limit: int = LIMIT,
) -> RecordPage[RechargeRecordOut]:
    records, total = await reports.list_recharges(
        portal(request).ctx, *_filters(date_from, date_to, keyword), offset=offset, limit=limit)
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
    batches = reports.iter_recharges(portal(request).ctx, *_filters(date_from, date_to, keyword))
    return _export("recharge-records.csv", RECHARGE_HEADER, batches, recharge_json)


@router.get("/calls")
async def call_records(
    request: Request,
    user: BillingUser,
    date_from: str = FROM,
    date_to: str = TO,
    keyword: str = KEYWORD,
    offset: int = OFFSET,
    limit: int = LIMIT,
    outcome: str = Query("", description="answered, unanswered or empty for both."),
) -> RecordPage[CallRecordOut]:
    if outcome == "refused":
        raise BadRequest("outcome: refused calls are /api/refused", field="outcome")
    records, total = await reports.list_calls(
        portal(request).ctx, *_filters(date_from, date_to, keyword), offset=offset, limit=limit,
        outcome=outcome)
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
    offset: int = OFFSET,
    limit: int = LIMIT,
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
    batches = reports.iter_calls(portal(request).ctx, *_filters(date_from, date_to, keyword))
    return _export("call-records.csv", CALL_HEADER, batches, call_json)


def _filters(date_from: str, date_to: str, keyword: str) -> tuple[reports.Period, str | None]:
    """A records query's period and keyword (a blank keyword is none)."""
    return reports.Period.parse(date_from, date_to), keyword.strip() or None


def _export(
    filename: str, header: Sequence[str], batches: AsyncIterator[Sequence[Record]],
    as_json: Callable[[Record], dict[str, Any]],
) -> Response:
    """Records as a CSV download, each batch sent as it is read."""

    async def rows() -> AsyncIterator[list[list[Any]]]:
        async for records in batches:
            yield [cells(as_json(r), header) for r in records]

    return csv_stream(filename, header, rows())


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


async def _trunks(request: Request, date_from: str, date_to: str,
                  extension: list[str]) -> list[dict[str, object]]:
    rows = await reports.trunk_statistics(portal(request).ctx,
                                          reports.Period.parse(date_from, date_to), extension)
    return [trunk_json(r) for r in rows]


@router.get("/statistics/trunks")
async def trunk_statistics(
    request: Request,
    user: BillingUser,
    date_from: str = FROM,
    date_to: str = TO,
    extension: list[str] = EXTENSIONS,
) -> list[TrunkRowOut]:
    """Per trunk: calls, talk time, revenue, buy cost and margin."""
    rows = await _trunks(request, date_from, date_to, extension)
    return [TrunkRowOut.model_validate(r) for r in rows]


@router.get("/statistics/trunks.csv", response_class=Response, responses=CSV)
async def trunk_statistics_csv(
    request: Request,
    user: BillingUser,
    date_from: str = FROM,
    date_to: str = TO,
    extension: list[str] = EXTENSIONS,
) -> Response:
    rows = await _trunks(request, date_from, date_to, extension)
    return csv_download("trunks.csv", TRUNK_HEADER, (cells(r, TRUNK_HEADER) for r in rows))
