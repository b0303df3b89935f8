"""Calls across a rate's boundary: the appliance's way (the start's rate for the whole call) by
default, split at boundaries when the rate says so - by example and by property, including the
limit's promise cost(limit) <= funds < cost(limit + 1) across boundaries."""

from __future__ import annotations

import itertools
from datetime import datetime, time
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from coobill.rating import (
    Calendar,
    Rate,
    RateBook,
    Tariff,
    TimeWindow,
    cost,
    max_duration,
    parse_days,
    split_cost,
    split_max_duration,
)

D = Decimal
CAP = 10800


def rate(id: int, window: tuple[str, str], tariff: Tariff, *, split: bool = True,
         days: str = "", prefix: str = "9") -> Rate:
    start, end = (time(*map(int, w.split(":"))) for w in window)
    return Rate(id=id, prefix=prefix, number_length=0, tariff=tariff,
                window=TimeWindow(start, end), extensions=frozenset({"*"}), split=split,
                calendar=Calendar(days=parse_days(days)))


DAY = Tariff(D("0.10"), 60, D("0.10"), 60)
EVENING = Tariff(D("0.50"), 60, D("0.05"), 60)


def book_of(*rates: Rate) -> RateBook:
    return RateBook(rates)


def at(book: RateBook):  # type: ignore[no-untyped-def]
    return lambda moment: book.select("100", "9123", moment)


class TestByExample:
    def test_the_appliances_way_rates_the_whole_call_at_its_start(self) -> None:
        day = rate(1, ("08:00", "17:59"), DAY, split=False)
        book = book_of(day, rate(2, ("18:00", "07:59"), EVENING, split=False))
        start = datetime(2027, 1, 4, 17, 58)
        assert split_cost(day, start, 300, at(book)) == cost(DAY, 300) == D("0.50")

    def test_a_split_call_pays_each_period_at_the_rate_in_force_when_it_starts(self) -> None:
        """17:58, 5 minutes: the initial minute and the 17:59 period at the day rate; the
        periods starting 18:00, 18:01, 18:02 at the evening rate (its rate, not its initial
        cost: that is the first rate's alone)."""
        day = rate(1, ("08:00", "17:59"), DAY)
        book = book_of(day, rate(2, ("18:00", "07:59"), EVENING))
        start = datetime(2027, 1, 4, 17, 58)
        assert split_cost(day, start, 300, at(book)) == D("0.10") + D("0.10") + 3 * D("0.05")

    def test_the_limit_buys_more_once_the_cheaper_window_starts(self) -> None:
        """1.00 from 17:58: 0.20 for two day minutes, then 0.05 a minute: 2 + 16 minutes."""
        day = rate(1, ("08:00", "17:59"), DAY)
        book = book_of(day, rate(2, ("18:00", "07:59"), EVENING))
        start = datetime(2027, 1, 4, 17, 58)
        limit = split_max_duration(day, start, D("1.00"), CAP, at(book))
        assert limit == 18 * 60
        assert split_cost(day, start, limit, at(book)) <= D("1.00")
        assert split_cost(day, start, limit + 1, at(book)) > D("1.00")

    def test_the_weekend_rate_takes_over_at_midnight(self) -> None:
        weekday = rate(1, ("00:00", "23:59"), DAY, days="mon,tue,wed,thu,fri")
        weekend = rate(2, ("00:00", "23:59"), EVENING, days="sat,sun")
        book = book_of(weekday, weekend)
        start = datetime(2027, 1, 8, 23, 59)  # a Friday
        assert book.select("100", "9123", start) is weekday
        assert split_cost(weekday, start, 180, at(book)) == D("0.10") + 2 * D("0.05")

    def test_a_moment_no_rate_covers_goes_on_at_the_first_rate(self) -> None:
        day = rate(1, ("08:00", "17:59"), DAY)
        start = datetime(2027, 1, 4, 17, 59)
        assert split_cost(day, start, 180, at(book_of(day))) == cost(DAY, 180)


TARIFFS = st.builds(
    Tariff,
    initial_cost=st.decimals(D("0"), D("2"), places=2),
    initial_seconds=st.sampled_from([0, 1, 30, 60]),
    rate=st.decimals(D("0"), D("1"), places=2),
    period_seconds=st.sampled_from([1, 6, 30, 55, 60]),
)
MINUTES = st.integers(0, 23 * 60 + 59)


@st.composite
def decks(draw: st.DrawFn) -> tuple[Rate, RateBook]:
    """Two to four split rates with windows cut at random minutes of the day."""
    cuts = sorted(draw(st.lists(MINUTES, min_size=1, max_size=3, unique=True)))
    bounds = [*cuts, cuts[0] + 24 * 60]
    rates = []
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        end = (b - 1) % (24 * 60)
        window = (f"{a % 1440 // 60:02d}:{a % 60:02d}", f"{end // 60:02d}:{end % 60:02d}")
        rates.append(rate(i + 1, window, draw(TARIFFS)))
    book = RateBook(rates)
    return rates[0], book


STARTS = st.datetimes(datetime(2027, 1, 1), datetime(2027, 12, 31))


@settings(max_examples=300, deadline=None)
@given(decks(), STARTS, st.decimals(D("0"), D("40"), places=2))
def test_the_limit_is_exactly_what_the_funds_buy_across_boundaries(
    deck: tuple[Rate, RateBook], start: datetime, funds: Decimal
) -> None:
    _, book = deck
    first = book.select("100", "9123", start)
    assert first is not None
    rate_at = at(book)
    limit = split_max_duration(first, start, funds, CAP, rate_at)
    assert 0 <= limit <= CAP
    if limit:
        assert split_cost(first, start, limit, rate_at) <= funds
    if limit < CAP and funds >= first.tariff.initial_cost:
        assert split_cost(first, start, limit + 1, rate_at) > funds


@settings(max_examples=200, deadline=None)
@given(decks(), STARTS, st.integers(0, 4000))
def test_a_longer_call_never_costs_less(
    deck: tuple[Rate, RateBook], start: datetime, seconds: int
) -> None:
    _, book = deck
    first = book.select("100", "9123", start)
    assert first is not None
    rate_at = at(book)
    assert split_cost(first, start, seconds, rate_at) <= split_cost(first, start, seconds + 7,
                                                                    rate_at)


@settings(max_examples=200, deadline=None)
@given(TARIFFS, STARTS, st.decimals(D("0"), D("40"), places=2), st.integers(0, 4000))
def test_one_rate_all_day_splits_into_the_same_as_the_appliance(
    tariff: Tariff, start: datetime, funds: Decimal, seconds: int
) -> None:
    only = rate(1, ("00:00", "23:59"), tariff)
    rate_at = at(book_of(only))
    assert split_cost(only, start, seconds, rate_at) == cost(tariff, seconds)
    assert split_max_duration(only, start, funds, CAP, rate_at) == max_duration(
        tariff, funds, CAP)


def test_a_window_that_crosses_midnight_belongs_to_each_minutes_own_day() -> None:
    saturday_nights = rate(1, ("22:00", "06:00"), DAY, days="sat")
    assert saturday_nights.matches("100", "9123", datetime(2027, 1, 9, 23, 0))  # Saturday
    assert saturday_nights.matches("100", "9123", datetime(2027, 1, 9, 5, 0))  # Saturday
    assert not saturday_nights.matches("100", "9123", datetime(2027, 1, 10, 5, 0))  # Sunday
    assert not saturday_nights.matches("100", "9123", datetime(2027, 1, 8, 23, 0))  # Friday
