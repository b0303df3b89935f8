"""Statistics: calls, talk time and cost by day, month or year, for all or chosen extensions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from coobill.errors import BadRequest
from coobill.services import extension_listing, reports
from coobill.web.auth import BillingUser, portal
from coobill.web.chart import build_chart
from coobill.web.pages.records import PERIOD_FIELDS
from coobill.web.render import query_without, render

router = APIRouter(include_in_schema=False)
TRUNK = "trunk"  # the grouping by trunk: revenue, buy cost and margin


async def _by_trunk(request: Request, context: dict[str, Any], period: reports.Period,
                    chosen: list[str]) -> Response:
    trunks = await reports.trunk_statistics(portal(request).ctx, period, chosen)
    # the chart draws each trunk as a bar of its revenue, its minutes as the line
    bars = [reports.StatsRow(r.trunk or "—", reports.ALL_EXTENSIONS, r.calls, r.answered,
                             r.total_seconds, r.revenue) for r in trunks]
    return await render(request, "statistics.html", {
        **context, "trunks": trunks, "chart": build_chart(bars),
        "download_query": query_without(request)})


@router.get("/statistics", response_class=HTMLResponse)
async def statistics(
    request: Request,
    user: BillingUser,
    date_from: str = "",
    date_to: str = "",
    by: str = "day",
    split: str = "",
) -> Response:
    ctx = portal(request).ctx
    chosen = request.query_params.getlist("extension")
    known, _ = await extension_listing.list_extensions(ctx)
    filters = {"date_from": date_from, "date_to": date_to, "by": by, "split": split}
    context = {"filters": filters, "chosen": chosen, "known": known, "rows": [], "chart": None}
    try:
        period = reports.Period.parse(date_from, date_to)
        if by == TRUNK:
            return await _by_trunk(request, context, period, chosen)
        rows = await reports.statistics(ctx, by, period, chosen, per_extension=True)
    except BadRequest as exc:
        f = exc.field or "form"
        return await render(
            request,
            "statistics.html",
            {**context, "errors": {PERIOD_FIELDS.get(f, f): exc.message}},
            400,
        )
    totals = reports.combined(rows)
    return await render(
        request,
        "statistics.html",
        {
            **context,
            "rows": rows if split == "on" else totals,
            "chart": build_chart(totals),
            "download_query": query_without(request),
        },
    )
