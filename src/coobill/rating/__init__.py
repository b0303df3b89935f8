"""The pure rating core: rates, their selection, cost and the talk time funds buy. No I/O."""

from coobill.rating.book import RateBook
from coobill.rating.calendar import (
    ALWAYS,
    DAY_NAMES,
    EVERY_DAY,
    NO_HOLIDAYS,
    Calendar,
    Holidays,
    days_text,
    parse_days,
)
from coobill.rating.rates import ALL_DAY, Rate, TimeWindow, select_rate
from coobill.rating.split import (
    Schedule,
    first_period_dearer,
    schedule_cost,
    schedule_max_duration,
    split_cost,
    split_max_duration,
    tariff_schedule,
)
from coobill.rating.tariff import Tariff, cost, max_duration, minimum_to_connect, price_per_minute

__all__ = [
    "ALL_DAY",
    "ALWAYS",
    "DAY_NAMES",
    "EVERY_DAY",
    "NO_HOLIDAYS",
    "Calendar",
    "Holidays",
    "Rate",
    "RateBook",
    "Schedule",
    "Tariff",
    "TimeWindow",
    "cost",
    "days_text",
    "first_period_dearer",
    "max_duration",
    "minimum_to_connect",
    "parse_days",
    "price_per_minute",
    "schedule_cost",
    "schedule_max_duration",
    "select_rate",
    "split_cost",
    "split_max_duration",
    "tariff_schedule",
]
