"""Several PBXs on one ledger: each daemon's recovery touches only its own PBX's holds."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from coobill.config import Settings
from coobill.services.commands import AuthorizeCall
from coobill.services.context import BillingContext
from coobill.services.extensions import ExtensionChanges, recharge, set_extension
from coobill.services.gate import authorize_call
from coobill.services.rate_fields import check_rate_fields
from coobill.services.rates import add_rate
from coobill.services.reservations import list_held, reconcile


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
    settled, flagged = await reconcile(east, set(), asked_at=None)

    assert (settled, flagged) == ([], ["east-1.1"])
    states = {h.uniqueid: h.state for h in await list_held(ctx)}
    assert states == {"east-1.1": "flagged", "west-1.1": "held"}
    assert sum(h.amount for h in await list_held(ctx)) <= Decimal("10")
