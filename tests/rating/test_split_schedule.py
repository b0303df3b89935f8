"""A split rate's schedule - what the gate holds for and settlement charges - prices a call as
the period-by-period walk of rating/split.py does, and its limit keeps the gate's promise
cost(limit) <= funds < cost(limit + 1) across boundaries: by property over random decks (day
windows, weekend rates) and start times, and by example across a DST change."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from coobill.rating import (
    Calendar,
    Rate,
    RateBook,
    Tariff,
    TimeWindow,
    first_period_dearer,
    parse_days,
    schedule_cost,
    schedule_max_duration,
    split_cost,
    split_max_duration,
    tariff_schedule,
)

D = Decimal
CAP = 10800
TARIFFS = st.builds(
    Tariff,
    initial_cost=st.decimals(D("0"), D("2"), places=2),
    initial_seconds=st.sampled_from([0, 1, 30, 60]),
    rate=st.decimals(D("0"), D("1"), places=2),
    period_seconds=st.sampled_from([1, 6, 30, 55, 60, 90]),
)
MINUTES = st.integers(0, 23 * 60 + 59)


def rate(id: int, window: tuple[int, int], tariff: Tariff, days: str = "") -> Rate:
    start, end = (time(m // 60, m % 60) for m in window)
    return Rate(id=id, prefix="9", number_length=0, tariff=tariff,
                window=TimeWindow(start, end), extensions=frozenset({"*"}), split=True,
                calendar=Calendar(days=parse_days(days)))


@st.composite
def books(draw: st.DrawFn) -> RateBook:
    """Split rates with windows cut at random minutes, and perhaps a weekend rate over them."""
    cuts = sorted(draw(st.lists(MINUTES, min_size=1, max_size=3, unique=True)))
    bounds = [*cuts, cuts[0] + 24 * 60]
    rates = []
    if draw(st.booleans()):
        rates.append(rate(1, (0, 1439), draw(TARIFFS), days="sat,sun"))
    for a, b in itertools.pairwise(bounds):
        rates.append(rate(len(rates) + 1, (a % 1440, (b - 1) % 1440), draw(TARIFFS)))
    return RateBook(rates)


STARTS = st.datetimes(datetime(2027, 1, 1), datetime(2027, 12, 31))


def walk(book: RateBook):  # type: ignore[no-untyped-def]
    return lambda moment: book.select("100", "9123", moment)


@settings(max_examples=300, deadline=None)
@given(books(), STARTS, st.integers(0, 5000), st.decimals(D("0"), D("40"), places=2))
def test_the_schedule_prices_and_limits_as_the_walk_does(
    book: RateBook, start: datetime, seconds: int, funds: Decimal
) -> None:
    first = book.select("100", "9123", start)
    assert first is not None
    schedule = tariff_schedule(first, start, CAP, walk(book))
    assert schedule_cost(schedule, seconds) == split_cost(first, start, seconds, walk(book))
    assert schedule_max_duration(schedule, funds, CAP) == split_max_duration(
        first, start, funds, CAP, walk(book))


@settings(max_examples=300, deadline=None)
@given(books(), STARTS, st.decimals(D("0"), D("40"), places=2),
       st.sampled_from([60, 600, 3600, CAP]))
def test_cost_of_the_limit_is_within_the_funds_and_one_second_more_is_not(
    book: RateBook, start: datetime, funds: Decimal, cap: int
) -> None:
    first = book.select("100", "9123", start)
    assert first is not None
    schedule = tariff_schedule(first, start, cap, walk(book))
    limit = schedule_max_duration(schedule, funds, cap)
    assert 0 <= limit <= cap
    if limit:
        assert schedule_cost(schedule, limit) <= funds
    if limit < cap and funds >= first.tariff.initial_cost:
        assert schedule_cost(schedule, limit + 1) > funds


def test_the_docs_example_across_six_pm() -> None:
    """docs/rating.md §5: day 0.02/60 s to 17:59, night 0.01/60 s from 18:00, both split."""
    day = rate(1, (8 * 60, 17 * 60 + 59), Tariff(D(0), 0, D("0.02"), 60))
    night = rate(2, (18 * 60, 7 * 60 + 59), Tariff(D(0), 0, D("0.01"), 60))
    book = RateBook([day, night])
    start = datetime(2027, 1, 4, 17, 58, 30)
    schedule = tariff_schedule(day, start, CAP, walk(book))
    assert schedule[:2] == ((0, day.tariff), (90, night.tariff))
    assert schedule_cost(schedule, 150) == D("0.05")
    assert schedule_max_duration(schedule, D("0.04"), CAP) == 120
    assert schedule_max_duration(schedule, D("0.05"), CAP) == 180


def test_across_a_dst_change_the_boundary_is_at_the_local_hour() -> None:
    """New York, 2027-03-14 02:00 EST -> 03:00 EDT. A night rate to 02:59 and a day rate from
    03:00: a call from 01:58 EST meets the day rate two minutes in (the clock jumps), not an
    hour later as a naive local time plus the talk would say."""
    zone = ZoneInfo("America/New_York")
    night = rate(1, (0, 2 * 60 + 59), Tariff(D(0), 0, D("0.01"), 60))
    day = rate(2, (3 * 60, 23 * 60 + 59), Tariff(D(0), 0, D("0.05"), 60))
    book = RateBook([night, day])
    start = datetime(2027, 3, 14, 1, 58, tzinfo=zone).astimezone(UTC)

    def local_rate(moment: datetime) -> Rate | None:
        return book.select("100", "9123", moment.astimezone(zone).replace(tzinfo=None))

    schedule = tariff_schedule(night, start, CAP, local_rate)
    assert schedule[1] == (120, day.tariff)
    assert schedule_cost(schedule, 180) == D("0.01") * 2 + D("0.05")
    # naive wall-clock arithmetic would have found the day rate only at 03:00 "+62 min"
    naive = datetime(2027, 3, 14, 1, 58)
    assert book.select("100", "9123", naive + timedelta(minutes=2)) is night



def test_the_first_dearer_period_starts_where_its_segment_s_first_period_does() -> None:
    """A period belongs to the segment it starts in: the one from 60 s (before the dearer
    segment at 90 s) is the cheap tariff's; the first dearer one starts at 120 s."""
    cheap = Tariff(D("0.10"), 60, D("0.05"), 60)
    dear = Tariff(D("0"), 0, D("0.20"), 60)
    schedule = ((0, cheap), (90, dear))
    assert first_period_dearer(schedule, D("0.05")) == 120
    assert first_period_dearer(schedule, D("0.20")) is None  # not above: none is dearer
    assert schedule_cost(schedule, 120) == D("0.15")  # stopping there pays no dear period
