"""`coobill recharges list`, `coobill calls list` and `coobill stats`: the records and the
statistics, filtered by period and keyword."""

from __future__ import annotations

import argparse

from coobill.cli.output import emit
from coobill.formatting import duration
from coobill.services import refused, reports
from coobill.services.context import BillingContext

RECHARGE_COLUMNS = ("time", "extension", "name", "balance_before", "amount", "balance_after",
                    "who")
CALL_COLUMNS = ("start", "extension", "name", "number", "billable_time", "billsec", "trunk",
                "rate", "cost", "buy_cost", "margin", "disposition", "gated", "uniqueid")
TRUNK_COLUMNS = ("trunk", "calls", "answered", "total_duration", "total_seconds", "revenue",
                 "buy_cost", "margin")
REFUSED_COLUMNS = ("time", "extension", "number", "reason", "latency_ms", "uniqueid")
STATS_COLUMNS = ("date", "extension", "calls", "answered", "total_duration", "total_seconds",
                 "average_duration", "average_seconds", "total_cost")


async def recharges_list(args: argparse.Namespace, ctx: BillingContext) -> int:
    period = reports.Period.parse(args.date_from, args.date_to)
    records, _ = await reports.list_recharges(ctx, period, args.keyword)
    emit(
        args,
        [
            {
                "time": r.time,
                "extension": r.extension,
                "name": r.name,
                "balance_before": r.balance_before,
                "amount": r.amount,
                "balance_after": r.balance_after,
                "who": r.who,
            }
            for r in records
        ],
        RECHARGE_COLUMNS,
    )
    return 0


async def calls_list(args: argparse.Namespace, ctx: BillingContext) -> int:
    period = reports.Period.parse(args.date_from, args.date_to)
    if args.outcome == "refused":
        refusals, _ = await refused.list_refused(ctx, *period.bounds(), args.keyword)
        emit(args, [{"time": r.at, "extension": r.extension, "number": r.number,
                     "reason": r.reason, "latency_ms": r.latency_ms, "uniqueid": r.uniqueid}
                    for r in refusals], REFUSED_COLUMNS)
        return 0
    records, _ = await reports.list_calls(ctx, period, args.keyword, outcome=args.outcome or "")
    emit(
        args,
        [
            {
                "start": c.start,
                "extension": c.extension,
                "name": c.name,
                "number": c.number,
                "billable_time": duration(c.billable_seconds),
                "billsec": c.billable_seconds,
                "trunk": c.trunk,
                "rate": c.rate,
                "cost": c.cost,
                "buy_cost": c.buy_cost,
                "margin": c.margin,
                "disposition": c.disposition,
                "gated": c.gated,
                "uniqueid": c.uniqueid,
            }
            for c in records
        ],
        CALL_COLUMNS,
    )
    return 0


async def trunk_stats(args: argparse.Namespace, ctx: BillingContext) -> int:
    period = reports.Period.parse(args.date_from, args.date_to)
    rows = await reports.trunk_statistics(ctx, period, args.extensions)
    emit(args, [{"trunk": r.trunk, "calls": r.calls, "answered": r.answered,
                 "total_duration": duration(r.total_seconds), "total_seconds": r.total_seconds,
                 "revenue": r.revenue, "buy_cost": r.buy_cost, "margin": r.margin}
                for r in rows], TRUNK_COLUMNS)
    return 0


async def stats(args: argparse.Namespace, ctx: BillingContext) -> int:
    if args.by == "trunk":
        return await trunk_stats(args, ctx)
    period = reports.Period.parse(args.date_from, args.date_to)
    rows = await reports.statistics(
        ctx, args.by, period, args.extensions, per_extension=args.per_extension
    )
    emit(
        args,
        [
            {
                "date": r.period,
                "extension": "All" if r.extension == reports.ALL_EXTENSIONS else r.extension,
                "calls": r.calls,
                "answered": r.answered,
                "total_duration": duration(r.total_seconds),
                "total_seconds": r.total_seconds,
                "average_duration": duration(r.average_seconds),
                "average_seconds": r.average_seconds,
                "total_cost": r.cost,
            }
            for r in rows
        ],
        STATS_COLUMNS,
    )
    return 0


HANDLERS = {
    "recharges.list": recharges_list,
    "calls.list": calls_list,
    "stats": stats,
}
