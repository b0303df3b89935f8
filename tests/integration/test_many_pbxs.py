"""Several PBXs on one ledger: each daemon's recovery touches only its own PBX's holds."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from coobill.config import Settings
from coobill.services.audit import audit
from coobill.services.balances import recharge
from coobill.services.commands import AuthorizeCall, Disposition, SettleCall
from coobill.services.context import BillingContext
from coobill.services.extensions import ExtensionChanges, set_extension, show_extension
from coobill.services.gate import authorize_call
from coobill.services.rate_fields import check_rate_fields
from coobill.services.rates import add_rate
from coobill.services.reports import list_calls
from coobill.services.reservations import list_held, reconcile
from coobill.services.settlement import settle_call


def daemon_of(ctx: BillingContext, pbx: str) -> BillingContext:
    """Another daemon's view of the same ledger (its own caches, its own PBX name)."""
    config = Settings(database={"url": str(ctx.uow.engine.url)}, pbx={"name": pbx})
    return replace(ctx, config=config, rate_cache=type(ctx.rate_cache)())


async def test_recovery_on_one_pbx_leaves_another_pbxs_live_calls_alone(
    ctx: BillingContext,
) -> None:
    await set_extension(ctx, "100", ExtensionChanges(billing=True))
    await recharge(ctx, ["100"], "10")
    await add_rate(ctx, check_rate_fields(prefix="9", number_length=0, initial_cost="0",
                                          initial_seconds=0, rate="0.01", period_seconds=60,
                                          extensions="*"))
    east, west = daemon_of(ctx, "pbx-east"), daemon_of(ctx, "pbx-west")
    assert (await authorize_call(east, AuthorizeCall("east-1.1", "100", "9123"))).allowed
    assert (await authorize_call(west, AuthorizeCall("west-1.1", "100", "9456"))).allowed

    # pbx-east lost its AMI connection and comes back with no channel up.
    done = await reconcile(east, set(), asked_at=None)

    assert (done.settled, done.flagged) == ([], ["east-1.1"])
    states = {h.uniqueid: h.state for h in await list_held(ctx)}
    assert states == {"east-1.1": "flagged", "west-1.1": "held"}
    assert sum(h.amount for h in await list_held(ctx)) <= Decimal("10")


async def test_two_pbxs_with_the_same_uniqueid_each_hold_and_pay_their_own(
    ctx: BillingContext,
) -> None:
    """Neither PBX sets a systemname: both number a channel 1795610072.0. Each authorization
    keeps its own hold, each settlement closes its own PBX's and debits its own caller."""
    for ext in ("100", "200"):
        await set_extension(ctx, ext, ExtensionChanges(billing=True))
        await recharge(ctx, [ext], "10")
    await add_rate(ctx, check_rate_fields(prefix="9", number_length=0, initial_cost="0",
                                          initial_seconds=0, rate="0.01", period_seconds=1,
                                          extensions="*"))
    east, west = daemon_of(ctx, "pbx-east"), daemon_of(ctx, "pbx-west")
    uid = "1795610072.0"
    assert (await authorize_call(east, AuthorizeCall(uid, "100", "9123"))).allowed
    assert (await authorize_call(west, AuthorizeCall(uid, "200", "9456"))).allowed
    assert {(h.pbx, h.extension) for h in await list_held(ctx)} == {
        ("pbx-east", "100"), ("pbx-west", "200")}

    await settle_call(east, answered(uid, "100", "9123", 30))
    assert [(h.pbx, h.extension) for h in await list_held(ctx)] == [("pbx-west", "200")]
    await settle_call(west, answered(uid, "200", "9456", 50))
    assert await list_held(ctx) == []
    assert (await show_extension(ctx, "100")).balance == Decimal("9.70")
    assert (await show_extension(ctx, "200")).balance == Decimal("9.50")
    calls = {(c.extension, c.billable_seconds) for c in (await list_calls(ctx))[0]}
    assert calls == {("100", 30), ("200", 50)}
    assert (await audit(ctx)).ok


def answered(uniqueid: str, extension: str, number: str, seconds: int) -> SettleCall:
    start = datetime(2026, 11, 22, 14, 0, 0)
    return SettleCall(
        uniqueid=uniqueid, caller_extension=extension, caller_name="", dialled_number=number,
        start=start, answer=start, end=start + timedelta(seconds=seconds),
        billable_seconds=seconds, disposition=Disposition.ANSWERED, trunk="carrier",
        leg="PJSIP/carrier-00000001",
    )
