"""Which rate applies to a call: table tests of the selection rules, and the rate book
agreeing with a plain scan."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coobill.rating import (
    Calendar,
    Holidays,
    Rate,
    RateBook,
    Tariff,
    TimeWindow,
    parse_days,
    select_rate,
)

T = Tariff(Decimal("0"), 0, Decimal("1"), 60)


def hm(text: str) -> time:
    h, m = text.split(":")
    return time(int(h), int(m))


def rate(id: int, prefix: str, length: int = 0, window: str = "00:00-23:59",
         exts: str = "100,101", enabled: bool = True) -> Rate:
    start, end = window.split("-")
    return Rate(id=id, prefix=prefix, number_length=length, tariff=T,
                window=TimeWindow(hm(start), hm(end)),
                extensions=frozenset(exts.split(",")), enabled=enabled)


DECK = [
    rate(1, "9"),
    rate(2, "9", 12),
    rate(3, "9138"),
    rate(4, "9138", 12, exts="101"),
    rate(5, "90", window="22:00-06:00"),
    rate(6, "90", window="06:00-21:59"),
    rate(7, "900", enabled=False),
    rate(8, "", 0, exts="102"),
    rate(9, "9", 12),  # same as 2, created later: loses the tie
    rate(10, "95", exts="*"),
]

CASES = [
    # extension, number, time, expected rate id, why
    ("100", "91234", "12:00", 1, "only the short prefix matches"),
    ("100", "912345678901", "12:00", 2, "exact length beats length 0 for the same prefix"),
    ("100", "913800000000", "12:00", 3, "longest prefix wins over an exact length"),
    ("101", "913800000000", "12:00", 4, "longest prefix, then exact length"),
    ("100", "9138000", "12:00", 3, "a length that does not match is skipped"),
    ("100", "9012", "23:30", 5, "a window crossing midnight holds late evening"),
    ("100", "9012", "05:59", 5, "... and early morning"),
    ("100", "9012", "06:00", 5, "both ends of a window are included (tie: earliest created)"),
    ("100", "9012", "06:01", 6, "the day window"),
    ("100", "9012", "21:59", 6, "the day window's last minute"),
    ("100", "9012", "22:00", 5, "the night window's first minute"),
    ("100", "90012", "12:00", 6, "a disabled rate never applies"),
    ("102", "91234", "12:00", 8, "an empty prefix matches any number"),
    ("103", "91234", "12:00", None, "an extension no rate names has no rate"),
    ("103", "9512", "12:00", 10, "'*' applies to every extension"),
    ("100", "81234", "12:00", None, "no prefix matches"),
]


@pytest.mark.parametrize(("ext", "number", "at", "expected", "why"), CASES)
def test_selection_rules(ext: str, number: str, at: str, expected: int | None, why: str) -> None:
    chosen = select_rate(DECK, ext, number, hm(at))
    assert (chosen.id if chosen else None) == expected, why


@pytest.mark.parametrize(("ext", "number", "at", "expected", "why"), CASES)
def test_the_rate_book_chooses_as_the_scan_does(
    ext: str, number: str, at: str, expected: int | None, why: str
) -> None:
    chosen = RateBook(DECK).select(ext, number, hm(at))
    assert (chosen.id if chosen else None) == expected, why


class TestTimeWindow:
    def test_an_all_day_window_holds_the_last_second_of_the_day(self) -> None:
        assert TimeWindow(hm("00:00"), hm("23:59")).holds(time(23, 59, 59))

    def test_a_window_ending_at_a_minute_holds_that_whole_minute(self) -> None:
        w = TimeWindow(hm("08:00"), hm("17:59"))
        assert w.holds(time(17, 59, 59))
        assert not w.holds(time(18, 0))

    def test_a_crossing_window_excludes_the_middle_of_the_day(self) -> None:
        w = TimeWindow(hm("22:00"), hm("06:00"))
        assert not w.holds(time(12, 0))
        assert not w.holds(time(6, 1))
        assert not w.holds(time(21, 59))

    def test_window_ends_are_whole_minutes(self) -> None:
        with pytest.raises(ValueError):
            TimeWindow(time(1, 0, 30), time(2, 0))


class TestRateIsCheckedWhenMade:
    def test_a_prefix_is_digits(self) -> None:
        with pytest.raises(ValueError):
            rate(1, "9a")
        with pytest.raises(ValueError):
            rate(1, "\uff18\uff18")  # full-width digits: no dialled number is made of them

    def test_a_length_counts_the_prefix(self) -> None:
        with pytest.raises(ValueError):
            rate(1, "9138", 3)


prefixes = st.text(alphabet="0123456789", min_size=0, max_size=4)
windows = st.sampled_from(["00:00-23:59", "22:00-06:00", "06:00-21:59", "12:00-12:30"])
decks = st.lists(
    st.tuples(
        prefixes,
        st.sampled_from([0, 4, 5, 6]),
        windows,
        st.sampled_from(["100", "101", "100,101", "*"]),
        st.booleans(),
    ),
    max_size=30,
).map(
    lambda rows: [
        rate(i + 1, p, max(n, len(p)) if n else 0, w, e, on)
        for i, (p, n, w, e, on) in enumerate(rows)
    ]
)


@settings(max_examples=300)
@given(
    decks,
    st.sampled_from(["100", "101", "102"]),
    st.text("0123456789", min_size=1, max_size=6),
    st.times(),
)
def test_the_rate_book_always_agrees_with_a_plain_scan(deck, ext, number, at) -> None:  # type: ignore[no-untyped-def]
    expected = select_rate(deck, ext, number, at)
    assert RateBook(deck).select(ext, number, at) == expected


calendars = st.sampled_from([
    Calendar(),
    Calendar(days=parse_days("mon,tue,wed,thu,fri"), holidays="except"),
    Calendar(days=parse_days("sat,sun")),
    Calendar(holidays="only"),
    Calendar(valid_until=datetime(2027, 1, 1)),
    Calendar(valid_from=datetime(2027, 1, 1)),
    Calendar(days=parse_days("fri"), valid_from=datetime(2026, 6, 1),
             valid_until=datetime(2027, 6, 1)),
])
dated_decks = st.lists(
    st.tuples(prefixes, st.sampled_from([0, 4, 5, 6]), windows,
              st.sampled_from(["100", "101", "100,101", "*"]), calendars),
    max_size=30,
).map(lambda rows: [
    replace(rate(i + 1, p, max(n, len(p)) if n else 0, w, e), calendar=c)
    for i, (p, n, w, e, c) in enumerate(rows)
])
HOLIDAYS = Holidays.of([(date(2026, 12, 25), True), (date(2027, 1, 1), False)])


@settings(max_examples=300)
@given(dated_decks, st.sampled_from(["100", "101", "102"]),
       st.text("0123456789", min_size=1, max_size=6),
       st.datetimes(min_value=datetime(2026, 12, 20), max_value=datetime(2027, 1, 10)))
def test_with_calendars_the_rate_book_agrees_with_a_plain_scan(deck, ext, number, at) -> None:  # type: ignore[no-untyped-def]
    """Days, holidays and dated decks too: the book's once-a-call weekday and holiday answer
    as each rate's own calendar check does."""
    expected = select_rate(deck, ext, number, at, HOLIDAYS)
    assert RateBook(deck, HOLIDAYS).select(ext, number, at) == expected
