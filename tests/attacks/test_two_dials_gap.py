"""Attacks on a channel that dials twice (issue 13, items 1 and 2) when the first Dial fell in
an AMI gap: every answered Dial of a gated channel is one call record and one debit."""

from __future__ import annotations

from decimal import Decimal

from coobill.services.commands import AuthorizeCall
from coobill.services.context import BillingContext
from coobill.services.extensions import show_extension
from coobill.services.gate import authorize_call
from coobill.services.settlement import settle_channel
from tests.attacks.events import Feed, cdr, dial_begin, dial_end, hangup
from tests.services.conftest import make_extension, make_rate, rows

GATED = "1700000000.1"
FIRST = ("1700000000.2", "PJSIP/carrier-00000001")
SECOND = ("1700000000.3", "PJSIP/carrier-00000002")
NUMBER = "90012345678"


async def ask(ctx: BillingContext, feed: Feed, t: float) -> None:
    feed.clock.at(t)
    verdict = await authorize_call(ctx, AuthorizeCall(
        GATED, "100", NUMBER, earlier=feed.tracker.earlier(GATED)))
    assert verdict.allowed
    assert verdict.token
    feed.authorized(t, GATED, verdict.token)


class TestTheFirstDialInAGap:
    async def test_both_dials_are_charged(self, ctx: BillingContext) -> None:
        """Allowed at 0; AMI drops at 0.5 and is back at 10 (the channel and its first
        external leg are listed live). The first Dial (answered at 5, over at 35) was never
        seen begin; the dialplan asks the gate again at 36 and dials once more, seen whole.
        Both Dial Cdrs come at the end. CallTracker._dials keeps only the Dials it saw begin
        - "a Dial Cdr with no DialBegin from the channel, while others had one, is not a Dial
        of its own" (the attended-transfer heuristic) - so the first Dial's 30 s are dropped,
        and its hold, none of whose Dials is in the settlement, is released (the channel's
        Cdrs came, so it counts as known whole): free."""
        await make_extension(ctx, "100", balance="10")
        await make_rate(ctx, "9", initial_cost="0", initial_time=0, rate="0.01", period=1)
        feed = Feed(cdr_events="on")
        await ask(ctx, feed, 0)
        feed.clock.at(0.5)
        feed.tracker.disconnected()
        # lost: DialBegin and DialEnd ANSWER of the first Dial
        feed.clock.at(10)
        feed.tracker.begin_session()
        feed.tracker.reconcile({GATED, FIRST[0]})
        feed.tracker.connected()
        feed.at(35, hangup(FIRST[0]))
        await ask(ctx, feed, 36)
        feed.at(36, dial_begin(GATED, *SECOND))
        feed.at(40, dial_end(GATED, *SECOND))
        feed.at(70, hangup(SECOND[0]), hangup(GATED))
        feed.at(70, cdr(GATED, dest_channel=FIRST[1], start=0, answer=5, end=35),
                cdr(GATED, dest_channel=SECOND[1], start=36, answer=40, end=70))
        feed.later()
        for ended in feed.ended:
            await settle_channel(ctx, ended.settle)
        records = await rows(ctx, "SELECT leg, billable_seconds, cost FROM call")
        spent = Decimal(10) - (await show_extension(ctx, "100")).balance
        assert spent == Decimal("0.60"), f"two Dials of 30 s charged {spent}: {records}"


class TestTheSecondDialInAGap:
    async def test_the_second_dials_late_cdr_is_still_charged(self, ctx: BillingContext) -> None:
        """Allowed at 0, its first Dial seen whole (answered at 5, over at 35); asked again
        at 36, AMI drops before the second Dial begins and is back at 45 (the channel is
        listed live). The channel hangs up at 70; its first Dial's Cdr comes at once, the
        second's a moment later (each Cdr is an event of its own). Settled on the first Cdr
        - every Dial it saw had its Cdr - the second Dial's came for a channel already
        settled complete and was dropped, and its hold released: free."""
        await make_extension(ctx, "100", balance="10")
        await make_rate(ctx, "9", initial_cost="0", initial_time=0, rate="0.01", period=1)
        feed = Feed(cdr_events="on", cdr_grace_seconds=5.0)
        await ask(ctx, feed, 0)
        feed.at(0.5, dial_begin(GATED, *FIRST))
        feed.at(5, dial_end(GATED, *FIRST))
        feed.at(35, hangup(FIRST[0]))
        await ask(ctx, feed, 36)
        feed.clock.at(36.1)
        feed.tracker.disconnected()
        # lost: DialBegin and DialEnd ANSWER of the second Dial
        feed.clock.at(45)
        feed.tracker.begin_session()
        feed.tracker.reconcile({GATED, SECOND[0]})
        feed.tracker.connected()
        feed.at(70, hangup(SECOND[0]), hangup(GATED),
                cdr(GATED, dest_channel=FIRST[1], start=0, answer=5, end=35))
        feed.at(70.5, cdr(GATED, dest_channel=SECOND[1], start=36, answer=40, end=70))
        feed.later()
        for ended in feed.ended:
            await settle_channel(ctx, ended.settle)
        records = await rows(ctx, "SELECT leg, billable_seconds, cost FROM call")
        spent = Decimal(10) - (await show_extension(ctx, "100")).balance
        assert spent == Decimal("0.60"), f"two Dials of 30 s charged {spent}: {records}"
