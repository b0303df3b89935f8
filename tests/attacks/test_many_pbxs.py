"""Attacks on several PBXs sharing one ledger (issue 13, item 8): holds and calls are keyed by
(PBX, uniqueid); what a billing user does to a hold must act on that hold, whichever daemon's
portal (or whichever host's CLI) does it."""

from __future__ import annotations

from decimal import Decimal

from coobill.services import rates
from coobill.services.commands import AuthorizeCall
from coobill.services.context import BillingContext
from coobill.services.gate import authorize_call
from coobill.services.reservations import charge, list_held, reconcile
from tests.integration.test_many_pbxs import daemon_of
from tests.services.conftest import make_extension, make_rate, rows


class TestResolvingAnotherPbxsFlaggedHold:
    async def test_charging_it_settles_that_hold_at_its_own_tariff(
        self, ctx: BillingContext
    ) -> None:
        """pbx-east's call e.1 was allowed at 0.01/s and flagged (its end was missed). The
        billing user resolves it on pbx-west's portal (the Live calls page lists every PBX's
        holds: list_held has no PBX filter): charge 60 s. reservations.charge finds the hold
        by uniqueid alone, but settle_channel looks for the channel's holds under the
        *portal's* PBX: none, so the charge is recorded as an ungated call of pbx-west at
        today's price (the rate was raised to 0.05/s meanwhile), and east's hold stays
        flagged, its funds reserved, to be charged (or released) a second time."""
        await make_extension(ctx, "100", balance="10")
        view = await make_rate(ctx, "9", initial_cost="0", initial_time=0, rate="0.01", period=1)
        east, west = daemon_of(ctx, "pbx-east"), daemon_of(ctx, "pbx-west")
        assert (await authorize_call(east, AuthorizeCall("e.1", "100", "9123"))).allowed
        await reconcile(east, set(), asked_at=None)
        assert [h.state for h in await list_held(west)] == ["flagged"]
        await rates.edit_rate(ctx, view.id, rate="0.05")

        settlement = await charge(west, "e.1", 60)

        records = await rows(ctx, "SELECT pbx, gated, cost FROM call WHERE uniqueid = 'e.1'")
        assert settlement is not None, records
        assert settlement.cost == Decimal("0.60"), records
        assert await list_held(ctx) == [], "the hold it charged is still open"
        assert records == [("pbx-east", True, 6000)]
