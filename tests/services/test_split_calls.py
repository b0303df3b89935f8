"""A call across a window boundary through the gate and settlement: unsplit by default (the
start's rate for the whole call, as the appliance does); a split rate's limit and hold are
its piecewise cost, and settlement charges the same schedule whatever the rates become."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from coobill.services import rates
from coobill.services.context import BillingContext
from coobill.services.settings import change_settings
from tests.conftest import FakeClock
from tests.services.conftest import authorize, ended, make_extension, make_rate, rows, settle

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
