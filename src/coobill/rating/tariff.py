"""A rate's price of talk time: what N billable seconds cost and what funds buy.

Pure functions over immutable values; the only imports are the standard library's.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal("0")


@dataclass(frozen=True, slots=True)
class Tariff:
    """The price part of a rate.

    The initial cost covers the first `initial_seconds`; each started `period_seconds` after
    them costs `rate` (a partial period is charged whole). With `initial_seconds == 0` the
    initial cost is a connection fee charged on every answered call.
    """

    initial_cost: Decimal
    initial_seconds: int
    rate: Decimal
    period_seconds: int

    def __post_init__(self) -> None:
        if self.period_seconds <= 0:
            raise ValueError("billing period must be at least 1 second")
        if self.initial_seconds < 0:
            raise ValueError("initial time must not be negative")
        if self.initial_cost < 0 or self.rate < 0:
            raise ValueError("costs must not be negative")


def cost(tariff: Tariff, billable_seconds: int) -> Decimal:
    """What `billable_seconds` of talk cost: 0 for an unanswered call (billsec <= 0)."""
    if billable_seconds <= 0:
        return ZERO
    beyond = billable_seconds - tariff.initial_seconds
    if beyond <= 0:
        return tariff.initial_cost
    periods = -(-beyond // tariff.period_seconds)  # started periods, ceiling division
    return tariff.initial_cost + periods * tariff.rate


def minimum_to_connect(tariff: Tariff) -> Decimal:
    """The funds a call must have to be allowed: the initial cost, else one period's rate."""
    return tariff.initial_cost if tariff.initial_cost > 0 else tariff.rate


def max_duration(tariff: Tariff, funds: Decimal, cap_seconds: int) -> int:
    """The longest talk time in whole seconds whose cost is within `funds`, at most `cap_seconds`.

    Property: cost(max_duration(f)) <= f < cost(max_duration(f) + 1) whenever the result is
    below the cap. A free continuation (rate 0) is limited by the cap alone.
    """
    if cap_seconds <= 0:
        return 0
    if funds < tariff.initial_cost or funds < 0:
        return 0
    if tariff.rate == 0:
        return cap_seconds
    periods = int((funds - tariff.initial_cost) // tariff.rate)
    seconds = tariff.initial_seconds + periods * tariff.period_seconds
    return min(seconds, cap_seconds)


def price_per_minute(tariff: Tariff) -> Decimal:
    """What a minute of talk costs at its dearest: the initial time's price per minute, or the
    periods' after it, whichever is higher (a connection fee, `initial_seconds == 0`, is no
    price of time). 4 places, rounded up: a price a hair above a maximum is above it."""
    per_minute = tariff.rate * 60 / tariff.period_seconds
    if tariff.initial_seconds > 0:
        per_minute = max(per_minute, tariff.initial_cost * 60 / tariff.initial_seconds)
    return _per_minute(per_minute)


def period_price_per_minute(tariff: Tariff) -> Decimal:
    """What a minute of its periods costs (a split call's later segments are charged their
    periods alone: the initial time is the first tariff's). Rounded up as above."""
    return _per_minute(tariff.rate * 60 / tariff.period_seconds)


def _per_minute(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.0001"), rounding="ROUND_CEILING")
