"""The pure rating core: rates, their selection, cost and the talk time funds buy. No I/O."""

from coobill.rating.book import RateBook
from coobill.rating.rates import ALL_DAY, Rate, TimeWindow, select_rate
from coobill.rating.tariff import Tariff, cost, max_duration, minimum_to_connect

__all__ = [
    "ALL_DAY",
    "Rate",
    "RateBook",
    "Tariff",
    "TimeWindow",
    "cost",
    "max_duration",
    "minimum_to_connect",
    "select_rate",
]
