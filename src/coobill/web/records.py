"""Recharge records, call records and statistics as rows: for pages, JSON and CSV alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from coobill.money import fmt
from coobill.services.reports import (
    ALL_EXTENSIONS,
    CallRecord,
    RechargeRecord,
    StatsRow,
    TrunkRow,
)
from coobill.web.formatting import duration

RECHARGE_HEADER = ("time", "extension", "name", "balance_before", "amount", "balance_after", "who")
CALL_HEADER = (
    "date",
    "extension",
    "name",
    "callee",
    "billable_time",
    "billable_seconds",
    "trunk",
    "cost",
    "buy_cost",
    "margin",
    "disposition",
    "uniqueid",
)
TRUNK_HEADER = ("trunk", "calls", "answered", "total_duration", "total_seconds", "revenue",
                "buy_cost", "margin")
STATS_HEADER = (
    "date",
    "extension",
    "calls",
    "answered",
    "total_duration",
    "total_seconds",
    "average_duration",
    "average_seconds",
    "total_cost",
    "refused",
)


def stamp(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def recharge_json(r: RechargeRecord) -> dict[str, Any]:
    return {
        "time": stamp(r.time),
        "extension": r.extension,
        "name": r.name,
        "balance_before": fmt(r.balance_before),
        "amount": fmt(r.amount),
        "balance_after": fmt(r.balance_after),
        "who": r.who,
    }


def call_json(c: CallRecord) -> dict[str, Any]:
    return {
        "date": stamp(c.start),
        "extension": c.extension,
        "name": c.name,
        "callee": c.number,
        "billable_time": duration(c.billable_seconds),
        "billable_seconds": c.billable_seconds,
        "trunk": c.trunk,
        "cost": fmt(c.cost),
        "buy_cost": "" if c.buy_cost is None else fmt(c.buy_cost),
        "margin": "" if c.margin is None else fmt(c.margin),
        "disposition": c.disposition,
        "uniqueid": c.uniqueid,
    }


def stats_json(s: StatsRow) -> dict[str, Any]:
    return {
        "date": s.period,
        "extension": "All" if s.extension == ALL_EXTENSIONS else s.extension,
        "calls": s.calls,
        "answered": s.answered,
        "total_duration": duration(s.total_seconds),
        "total_seconds": s.total_seconds,
        "average_duration": duration(s.average_seconds),
        "average_seconds": s.average_seconds,
        "total_cost": fmt(s.cost),
        "refused": s.refused,
    }


def trunk_json(row: TrunkRow) -> dict[str, Any]:
    return {
        "trunk": row.trunk,
        "calls": row.calls,
        "answered": row.answered,
        "total_duration": duration(row.total_seconds),
        "total_seconds": row.total_seconds,
        "revenue": fmt(row.revenue),
        "buy_cost": fmt(row.buy_cost),
        "margin": fmt(row.margin),
    }


def cells(row: dict[str, Any], header: Sequence[str]) -> list[Any]:
    return [row[c] for c in header]
