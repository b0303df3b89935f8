"""Attacks on the gate by a local process (issue 14, finding 8): FastAGI has no
authentication, so anything on the PBX host can send a request - one reusing a live call's
uniqueid among them. Whatever it asks, the holds of one extension never exceed its funds."""

from __future__ import annotations

from decimal import Decimal

from coobill.services.commands import AuthorizeCall
from coobill.services.context import BillingContext
from coobill.services.extensions import show_extension
from coobill.services.gate import authorize_call
from tests.services.conftest import make_extension, make_rate
from tests.services.test_gate import with_policy

LIVE = "1700000000.1"
NUMBER = "90012345678"


async def test_a_second_request_with_a_live_calls_uniqueid_holds_only_what_is_left(
    ctx: BillingContext,
) -> None:
    await make_extension(ctx, "100", balance="10")
    await make_rate(ctx, "9", initial_cost="0", initial_time=0, rate="0.01", period=1)
    call = AuthorizeCall(LIVE, "100", NUMBER, channel="PJSIP/100-00000001")
    first = await authorize_call(ctx, call)
    assert first.allowed
    assert first.held == Decimal("10")
    again = [await authorize_call(ctx, call) for _ in range(5)]
    assert all(not v.allowed and v.reason == "no_funds" for v in again)
    view = await show_extension(ctx, "100")
    assert view.reserved == Decimal("10") <= view.balance


async def test_requests_with_one_uniqueid_share_the_funds_and_never_exceed_them(
    ctx: BillingContext,
) -> None:
    await make_extension(ctx, "100", balance="10")
    await make_rate(ctx, "9", initial_cost="0", initial_time=0, rate="0.01", period=1)
    capped = with_policy(ctx, max_call_seconds=300)  # 3.00 a call: three and what is left
    verdicts = [await authorize_call(capped, AuthorizeCall(LIVE, "100", NUMBER))
                for _ in range(6)]
    held = sum((v.held for v in verdicts), Decimal(0))
    assert [v.allowed for v in verdicts] == [True, True, True, True, False, False]
    assert held <= Decimal("10")
    assert (await show_extension(ctx, "100")).reserved == held
