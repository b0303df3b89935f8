"""Recharge records and call records: date range and keyword, paged; CSV of the result.

The keyword is fuzzy: part of the extension or its name (for calls, also the number dialled).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from coobill.errors import BadRequest
from coobill.services import refused, reports
from coobill.web.auth import BillingUser, portal
from coobill.web.render import PAGE_SIZE, page_number, pages, query_without, render

router = APIRouter(include_in_schema=False)

# Period.parse names its fields from/to; the forms call them date_from/date_to.
PERIOD_FIELDS = {"from": "date_from", "to": "date_to"}

Lister = Callable[..., Awaitable[tuple[list[Any], int]]]


async def _records(
    request: Request,
    template: str,
    lister: Lister,
    date_from: str,
    date_to: str,
    keyword: str,
    page: str,
    extra: dict[str, str] | None = None,
) -> Response:
    filters = {"date_from": date_from, "date_to": date_to, "keyword": keyword, **(extra or {})}
    wanted = page_number(page)
    try:
        period = reports.Period.parse(date_from, date_to)
    except BadRequest as exc:
        field = PERIOD_FIELDS.get(exc.field or "", exc.field or "form")
        return await render(
            request,
            template,
            {
                "rows": [],
                "filters": filters,
                "paging": pages(0, 1),
                "errors": {field: exc.message},
            },
            400,
        )
    rows, total = await lister(
        portal(request).ctx,
        period,
        keyword.strip() or None,
        offset=(wanted - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    return await render(
        request,
        template,
        {
            "rows": rows,
            "filters": filters,
            "paging": pages(total, wanted),
            "pager_query": query_without(request, "page"),
            "download_query": query_without(request, "page"),
        },
    )


@router.get("/recharges", response_class=HTMLResponse)
async def recharge_records(
    request: Request,
    user: BillingUser,
    date_from: str = "",
    date_to: str = "",
    keyword: str = "",
    page: str = "1",
) -> Response:
    return await _records(
        request, "recharges.html", reports.list_recharges, date_from, date_to, keyword, page
    )


@router.get("/calls", response_class=HTMLResponse)
async def call_records(
    request: Request,
    user: BillingUser,
    date_from: str = "",
    date_to: str = "",
    keyword: str = "",
    page: str = "1",
    outcome: str = "",
) -> Response:
    """Answered and unanswered calls (the records), or the calls the gate refused."""
    outcome = reports.check_outcome(outcome)
    lister: Lister = _refused if outcome == "refused" else partial(reports.list_calls,
                                                                   outcome=outcome)
    return await _records(
        request, "calls.html", lister, date_from, date_to, keyword, page, {"outcome": outcome}
    )


async def _refused(ctx: Any, period: reports.Period, keyword: str | None, *, offset: int,
                   limit: int) -> tuple[list[Any], int]:
    first, last = period.bounds()
    return await refused.list_refused(ctx, first, last, keyword, offset=offset, limit=limit)
