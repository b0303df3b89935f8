"""The trunk argument of the shipped dialplan (issue 17) end to end: a channel running the
shipped AGI line (`…,${CHANNEL(endpoint)},${EXTEN},trunk`, tests/fakes/asterisk_agi.py), the
real GateServer, services and ledger (SQLite, and PostgreSQL when configured).

A site that configured nothing new (no buy rate, no min_margin) keeps calling; a site with a
buy rate for the trunk its Dial uses and a minimum margin is told DENY no_margin, with nothing
held; an empty trunk argument is no trunk."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal
from functools import partial

import pytest

from coobill.agi.server import GateOptions, GateServer
from coobill.services.context import BillingContext
from coobill.services.extensions import show_extension
from coobill.services.gate import authorize_call
from tests.fakes.asterisk_agi import DialplanChannel, FakeAsterisk
from tests.services.conftest import make_extension, make_rate
from tests.services.test_buy_rates import with_margin

NUMBER = "90012345678"
NO_TRUNK = "agi://127.0.0.1:4573/authorize,${CHANNEL(endpoint)},${EXTEN},"


async def tell(ctx: BillingContext, data: str | None = None) -> dict[str, str]:
    """What the gate tells PJSIP/100 dialling NUMBER through `data` (the shipped line)."""
    gate = GateServer(partial(authorize_call, ctx), replace(GateOptions(), port=0))
    await gate.start()
    try:
        channel = DialplanChannel("PJSIP/100-0000002a", "100", NUMBER, endpoint="100")
        seen = await asyncio.wait_for(FakeAsterisk(channel.request(data)).call(gate.port), 5.0)
    finally:
        await gate.close(drain_timeout=1.0)
    return seen.variables


@pytest.fixture
async def office(ctx: BillingContext) -> BillingContext:
    """100 with 10.00; 9… sells at 0.10 a minute; the trunk `trunk` buys it at 0.09."""
    await make_extension(ctx, "100", balance="10")
    await make_rate(ctx, "9", initial_cost="0", initial_time=0, rate="0.10", period=60)
    await make_rate(ctx, "9", initial_cost="0", initial_time=0, rate="0.09", period=60,
                    extensions=None, trunk="trunk", remark="buy")  # type: ignore[arg-type]
    return ctx


async def test_a_site_that_configured_nothing_new_is_allowed(ctx: BillingContext) -> None:
    await make_extension(ctx, "100", balance="10")
    await make_rate(ctx, "9", initial_cost="0", initial_time=0, rate="0.10", period=60)
    told = await tell(ctx)
    assert (told["COOBILL_RESULT"], told["COOBILL_REASON"]) == ("ALLOW", "ok")
    assert told["COOBILL_LIMIT"] == "6000"  # 10.00 at 0.10 a minute


async def test_a_buy_rate_without_a_minimum_margin_changes_nothing(
    office: BillingContext,
) -> None:
    told = await tell(office)
    assert (told["COOBILL_RESULT"], told["COOBILL_REASON"]) == ("ALLOW", "ok")


async def test_the_shipped_line_s_trunk_below_the_margin_is_no_margin(
    office: BillingContext,
) -> None:
    told = await tell(with_margin(office, "0.02"))  # 0.10 < 0.09 + 0.02
    assert told == {"COOBILL_RESULT": "DENY", "COOBILL_REASON": "no_margin",
                    "COOBILL_LIMIT": "", "COOBILL_DIAL_OPTIONS": ""}
    assert (await show_extension(office, "100")).reserved == Decimal("0")


async def test_the_margin_met_is_allowed(office: BillingContext) -> None:
    told = await tell(with_margin(office, "0.01"))  # equal is enough
    assert (told["COOBILL_RESULT"], told["COOBILL_REASON"]) == ("ALLOW", "ok")


async def test_an_empty_trunk_argument_is_no_trunk(office: BillingContext) -> None:
    told = await tell(with_margin(office, "0.02"), NO_TRUNK)
    assert (told["COOBILL_RESULT"], told["COOBILL_REASON"]) == ("ALLOW", "ok")
