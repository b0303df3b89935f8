"""A call across a window boundary through the gate and settlement: unsplit by default (the
start's rate for the whole call, as the appliance does); a split rate's limit and hold are
its piecewise cost, and settlement charges the same schedule whatever the rates become."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coobill.rating import RateBook, schedule_cost, tariff_schedule
from coobill.services import extensions, rates
from coobill.services.commands import Reason
from coobill.services.context import BillingContext
from coobill.services.funds import allowance
from coobill.services.settings import change_settings
from tests.conftest import FakeClock
from tests.rating.test_split_schedule import CAP, STARTS, books, walk
from tests.services.conftest import authorize, ended, make_extension, make_rate, rows, settle

D = Decimal

# 17:58:30 in Shanghai (UTC+8)
START = datetime(2027, 1, 4, 9, 58, 30, tzinfo=UTC)


async def day_and_night(ctx: BillingContext, *, split: bool, balance: str) -> dict[str, int]:
    await change_settings(ctx, timezone="Asia/Shanghai")
    await make_extension(ctx, "100", balance=balance)
    common = {"initial_cost": "0", "initial_time": 0, "period": 60, "split": split}
    day = await make_rate(ctx, "00", rate="0.02", start="08:00", end="17:59", **common)
    night = await make_rate(ctx, "00", rate="0.01", start="18:00", end="07:59", **common)
    return {"day": day.id, "night": night.id}


@pytest.mark.parametrize(("balance", "limit", "held"), [
    ("0.04", 120, "0.0400"),  # the third period (18:00:30, night) is not paid
    ("0.05", 180, "0.0500"),
    ("0.03", 60, "0.0200"),  # the second day period is not paid
    ("1.00", 5880, "1.0000"),  # 2 day minutes (0.04), then 96 night minutes (0.96)
])
async def test_a_split_rate_s_limit_and_hold_are_its_piecewise_cost(
    ctx: BillingContext, clock: FakeClock, balance: str, limit: int, held: str
) -> None:
    await day_and_night(ctx, split=True, balance=balance)
    clock.now = START
    quote = await rates.quote(ctx, "100", "0012345678", seconds=150)
    verdict = await authorize(ctx, "c1")
    assert verdict.allowed
    assert (verdict.limit_seconds, verdict.held) == (limit, Decimal(held))
    assert quote.limit_seconds == limit  # the quote says what the gate does
    assert quote.cost == Decimal("0.0500")


async def test_settlement_charges_the_schedule_the_gate_held_for(
    ctx: BillingContext, clock: FakeClock
) -> None:
    ids = await day_and_night(ctx, split=True, balance="1.00")
    clock.now = START
    assert (await authorize(ctx, "c1")).allowed
    # the night rate is edited while the call talks: the call keeps what it was allowed at
    await rates.edit_rate(ctx, ids["night"], rate="0.5")
    done = await settle(ctx, ended("c1", billsec=150, start=START))
    assert done is not None
    assert done.cost == Decimal("0.0500")
    assert await rows(ctx, "SELECT state FROM reservation") == [("settled",)]


async def test_by_default_the_whole_call_is_rated_at_its_start(
    ctx: BillingContext, clock: FakeClock
) -> None:
    await day_and_night(ctx, split=False, balance="0.05")
    clock.now = START
    verdict = await authorize(ctx, "c1")
    assert (verdict.limit_seconds, verdict.held) == (120, Decimal("0.0400"))
    done = await settle(ctx, ended("c1", billsec=110, start=START))
    assert done is not None
    assert done.cost == Decimal("0.0400")


@settings(max_examples=300, deadline=None)
@given(books(), STARTS, st.decimals(D("0"), D("40"), places=2))
def test_the_gate_s_allowance_holds_exactly_the_cost_of_its_limit(
    book: RateBook, start: datetime, funds: Decimal
) -> None:
    """services/funds.py allowance, as the gate calls it with a split rate's schedule: the hold
    is the schedule's cost of the limit, within the funds, and one second more is not."""
    first = book.select("100", "9123", start)
    assert first is not None
    schedule = tariff_schedule(first, start, CAP, walk(book))
    decision = allowance(first.tariff, funds, CAP, schedule)
    if not decision.allowed:
        assert decision.held == 0
        return
    assert decision.held == schedule_cost(schedule, decision.limit_seconds) <= funds
    if decision.limit_seconds < CAP:
        assert schedule_cost(schedule, decision.limit_seconds + 1) > funds


async def test_a_maximum_price_a_minute_stops_a_split_call_before_its_dearer_tariff(
    ctx: BillingContext, clock: FakeClock
) -> None:
    """07:58:30 in Shanghai, night (0.01 a minute) until 08:00, then day (0.02): with a
    maximum of 0.015 a minute the call may talk its two night periods (from 07:58:30 and
    07:59:30), and no period at the day's price; a call starting in the day is refused."""
    await day_and_night(ctx, split=True, balance="1.00")
    await extensions.set_extension(ctx, "100", extensions.ExtensionChanges(
        max_price_minute="0.015"))
    clock.now = datetime(2027, 1, 3, 23, 58, 30, tzinfo=UTC)
    quote = await rates.quote(ctx, "100", "0012345678", seconds=150)
    verdict = await authorize(ctx, "c1")
    assert verdict.allowed
    assert (verdict.limit_seconds, verdict.held) == (120, Decimal("0.0200"))
    assert quote.limit_seconds == 120  # the quote says what the gate does
    done = await settle(ctx, ended("c1", billsec=120, start=clock.now))
    assert done is not None
    assert done.cost == Decimal("0.0200")
    clock.now = START  # 17:58:30: the day's rate, dearer than allowed
    refused = await authorize(ctx, "c2")
    assert not refused.allowed
    assert refused.reason == Reason.MAX_PRICE
    # 07:59:30: the day begins 30 s in, but the period that starts at once is the night's,
    # a whole minute; the next would be the day's.
    clock.now = datetime(2027, 1, 3, 23, 59, 30, tzinfo=UTC)
    last_minute = await authorize(ctx, "c3")
    assert (last_minute.limit_seconds, last_minute.held) == (60, Decimal("0.0100"))
