"""Recharge records, call records and statistics, filtered as the portal and CLI ask: one
module each (recharges.py, calls.py, stats.py), on the period and paging of period.py."""

from coobill.services.reports.calls import (
    OUTCOMES,
    CallRecord,
    check_outcome,
    iter_calls,
    list_calls,
)
from coobill.services.reports.period import EXPORT_BATCH, LAST_DAY, PERIODS, Period, parse_day
from coobill.services.reports.recharges import RechargeRecord, iter_recharges, list_recharges
from coobill.services.reports.stats import ALL_EXTENSIONS, StatsRow, combined, statistics
from coobill.services.reports.trunks import TrunkRow, trunk_statistics

__all__ = [
    "ALL_EXTENSIONS",
    "EXPORT_BATCH",
    "LAST_DAY",
    "OUTCOMES",
    "PERIODS",
    "CallRecord",
    "Period",
    "RechargeRecord",
    "StatsRow",
    "TrunkRow",
    "check_outcome",
    "combined",
    "iter_calls",
    "iter_recharges",
    "list_calls",
    "list_recharges",
    "parse_day",
    "statistics",
    "trunk_statistics",
]
