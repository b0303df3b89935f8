"""The price of talk time: cost and max_duration, by example and by property."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coobill.rating import Tariff, cost, max_duration, minimum_to_connect

CAP = 10_800


def D(text: str) -> Decimal:
    return Decimal(text)


money = st.decimals(min_value=0, max_value=50, places=4, allow_nan=False, allow_infinity=False)
tariffs = st.builds(
    Tariff,
    initial_cost=money,
    initial_seconds=st.integers(0, 600),
    rate=money,
    period_seconds=st.integers(1, 600),
)
funds = st.decimals(min_value=-10, max_value=1000, places=4, allow_nan=False, allow_infinity=False)


class TestCost:
    def test_an_unanswered_call_costs_nothing(self) -> None:
        assert cost(Tariff(D("0.2"), 60, D("1"), 60), 0) == 0
        assert cost(Tariff(D("0.2"), 60, D("1"), 60), -3) == 0

    def test_the_initial_cost_covers_the_initial_time(self) -> None:
        t = Tariff(D("0.5"), 60, D("0.1"), 55)
        assert cost(t, 1) == D("0.5")
        assert cost(t, 60) == D("0.5")

    def test_each_started_period_after_the_initial_time_costs_one_rate(self) -> None:
        # The manual's example: 1 minute initial, then 0.1 per 55 s.
        t = Tariff(D("0.5"), 60, D("0.1"), 55)
        assert cost(t, 61) == D("0.6")
        assert cost(t, 115) == D("0.6")
        assert cost(t, 116) == D("0.7")

    def test_initial_time_zero_makes_the_initial_cost_a_connection_fee(self) -> None:
        t = Tariff(D("0.2"), 0, D("1"), 60)
        assert cost(t, 1) == D("1.2")
        assert cost(t, 60) == D("1.2")
        assert cost(t, 61) == D("2.2")

    def test_a_rate_without_initial_cost_charges_per_started_period(self) -> None:
        t = Tariff(D("0"), 0, D("0.05"), 6)
        assert cost(t, 7) == D("0.10")

    @pytest.mark.parametrize("bad", [
        {"initial_cost": D("0"), "initial_seconds": 0, "rate": D("1"), "period_seconds": 0},
        {"initial_cost": D("-1"), "initial_seconds": 0, "rate": D("1"), "period_seconds": 60},
        {"initial_cost": D("0"), "initial_seconds": 0, "rate": D("-1"), "period_seconds": 60},
        {"initial_cost": D("0"), "initial_seconds": -1, "rate": D("1"), "period_seconds": 60},
    ])
    def test_an_impossible_tariff_is_refused_when_it_is_made(self, bad: dict) -> None:  # type: ignore[type-arg]
        with pytest.raises(ValueError):
            Tariff(**bad)

    @given(tariffs, st.integers(0, 20_000), st.integers(0, 20_000))
    def test_cost_never_falls_as_talk_time_grows(self, t: Tariff, a: int, b: int) -> None:
        lo, hi = sorted((a, b))
        assert cost(t, lo) <= cost(t, hi)


class TestMaxDuration:
    def test_funds_below_the_initial_cost_buy_nothing(self) -> None:
        assert max_duration(Tariff(D("0.5"), 60, D("0.1"), 60), D("0.4999"), CAP) == 0

    def test_funds_buy_whole_periods_after_the_initial_time(self) -> None:
        t = Tariff(D("0.5"), 60, D("0.1"), 55)
        assert max_duration(t, D("0.5"), CAP) == 60
        assert max_duration(t, D("0.79"), CAP) == 60 + 2 * 55

    def test_a_free_continuation_is_limited_by_the_cap_alone(self) -> None:
        assert max_duration(Tariff(D("0.3"), 60, D("0"), 60), D("0.3"), CAP) == CAP

    def test_the_cap_limits_plentiful_funds(self) -> None:
        assert max_duration(Tariff(D("0"), 0, D("0.01"), 60), D("1000"), 3600) == 3600

    def test_minimum_to_connect_is_the_initial_cost_else_one_period(self) -> None:
        assert minimum_to_connect(Tariff(D("0.2"), 0, D("1"), 60)) == D("0.2")
        assert minimum_to_connect(Tariff(D("0"), 30, D("1"), 60)) == D("1")

    @settings(max_examples=400)
    @given(tariffs, funds)
    def test_the_limit_costs_at_most_the_funds_and_one_second_more_costs_more(
        self, t: Tariff, f: Decimal
    ) -> None:
        limit = max_duration(t, f, CAP)
        assert limit >= 0
        if limit == 0:
            assert f < t.initial_cost or f < 0 or cost(t, 1) > f
            return
        assert cost(t, limit) <= f
        if limit < CAP:
            assert f < cost(t, limit + 1)

    @given(tariffs, funds, funds)
    def test_more_funds_never_buy_less_time(self, t: Tariff, a: Decimal, b: Decimal) -> None:
        lo, hi = sorted((a, b))
        assert max_duration(t, lo, CAP) <= max_duration(t, hi, CAP)
