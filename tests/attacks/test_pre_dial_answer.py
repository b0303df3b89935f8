"""Attacks on the billable seconds when the caller was answered before Dial (issue 13, item 7,
ASTERISK.md §8): the CDR's billsec then counts from the caller's answer, ringing and the
announcement included. The sample dialplan's optional announcement does exactly that."""

from __future__ import annotations

from decimal import Decimal

from coobill.services.commands import AuthorizeCall
from coobill.services.context import BillingContext
from coobill.services.extensions import show_extension
from coobill.services.gate import authorize_call
from coobill.services.settlement import settle_channel
from tests.attacks.events import Feed, cdr, dial_begin, dial_end, hangup
from tests.services.conftest import make_extension, make_rate

GATED = "1700000000.1"
TRUNK_1 = ("1700000000.2", "PJSIP/carrier-00000001")
TRUNK_2 = ("1700000000.3", "PJSIP/carrier-00000002")
NUMBER = "90012345678"


async def ask(ctx: BillingContext, feed: Feed, t: float) -> str:
    """The channel asks the gate (as the daemon does: with the tracker's `earlier`)."""
    feed.clock.at(t)
    verdict = await authorize_call(ctx, AuthorizeCall(
        GATED, "100", NUMBER, channel="PJSIP/100-00000001",
        earlier=feed.tracker.earlier(GATED)))
    assert verdict.allowed
    assert verdict.token is not None
    feed.authorized(t, GATED, verdict.token)
    return verdict.token


async def per_second_rate(ctx: BillingContext, balance: str) -> None:
    await make_extension(ctx, "100", balance=balance)
    await make_rate(ctx, "9", initial_cost="0", initial_time=0, rate="0.01", period=1)


class TestAnAnnouncementBeforeDial:
    async def test_the_announcement_is_not_billed(self, ctx: BillingContext) -> None:
        """Answer() at 0, "your balance buys N minutes" for 15 s, the gate at 15, Dial at 15,
        the callee answers at 20 and talks 30 s (hangs up at 50). Asterisk's Dial Cdr says
        billsec 50 (from the caller's answer). Without `timestampevents = yes` the tracker
        believes the Cdr over the events (CallTracker._events_measure_better), so 50 s are
        charged for a 30 s talk: the 20 s of announcement and ringing are billed, contrary to
        the sample dialplan's comment and to issue 13's "bill the dialled party's talk time"."""
        await per_second_rate(ctx, "10")
        feed = Feed(cdr_events="on")
        await ask(ctx, feed, 15)
        feed.at(15, dial_begin(GATED, *TRUNK_1))
        feed.at(20, dial_end(GATED, *TRUNK_1))
        feed.at(50, hangup(TRUNK_1[0]), hangup(GATED))
        feed.at(50, cdr(GATED, dest_channel=TRUNK_1[1], start=0, answer=0, end=50))
        [ended] = feed.ended
        [settled] = await settle_channel(ctx, ended.settle)
        assert settled.cost == Decimal("0.30"), (
            f"30 s of talk charged {settled.cost}: billsec from the caller's answer")

    async def test_a_second_dial_cannot_spend_what_the_first_one_is_charged(
        self, ctx: BillingContext
    ) -> None:
        """Balance 1.00, 0.01/s, prepaid. Announcement 0-15, gate (limit 100 s, 1.00 held),
        Dial(...,g): answered at 20, callee hangs up at 50. The dialplan asks the gate again
        at 51: the tracker says the first Dial can have talked at most 37 s (the time since
        its authorization), so the first hold is lowered to 0.37 and the second call is
        allowed 63 s on the 0.63 it gave back. The first Dial's Cdr then says 50 s (it counts
        from the caller's answer at 0, before the authorization): 0.50 + 0.63 = 1.13 is
        charged on a 1.00 prepaid balance. The shrink's bound (time since the authorization)
        and settlement's charge (CDR billsec, capped only by the limit) disagree."""
        await per_second_rate(ctx, "1")
        feed = Feed(cdr_events="on")
        await ask(ctx, feed, 15)
        feed.at(15, dial_begin(GATED, *TRUNK_1))
        feed.at(20, dial_end(GATED, *TRUNK_1))
        feed.at(50, hangup(TRUNK_1[0]))
        await ask(ctx, feed, 51)
        feed.at(51, dial_begin(GATED, *TRUNK_2))
        feed.at(55, dial_end(GATED, *TRUNK_2))
        feed.at(118, hangup(TRUNK_2[0]), hangup(GATED))
        feed.at(118, cdr(GATED, dest_channel=TRUNK_1[1], start=0, answer=0, end=50),
                cdr(GATED, dest_channel=TRUNK_2[1], start=51, answer=51, end=118))
        [ended] = feed.ended
        await settle_channel(ctx, ended.settle)
        view = await show_extension(ctx, "100")
        assert view.balance >= 0, (
            f"a prepaid extension with 1.00 spent {Decimal(1) - view.balance}")
