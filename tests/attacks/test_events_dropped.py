"""Attacks on a session that loses events without losing the connection (Asterisk drops
events for a manager client that falls behind - docs/settlement.md, "Events lost while
connected"): issue 13's "never release what may have been dialled" (item 1)."""

from __future__ import annotations

from coobill.services.commands import AuthorizeCall
from coobill.services.context import BillingContext
from coobill.services.gate import authorize_call
from coobill.services.settlement import settle_channel
from tests.attacks.events import Feed
from tests.services.conftest import make_extension, make_rate, rows

GATED = "1700000000.1"
NUMBER = "90012345678"


class TestADialWhoseEventsWereDropped:
    async def test_a_channel_that_shows_it_was_connected_is_not_released_free(
        self, ctx: BillingContext
    ) -> None:
        """cdr_events = "off". The gate allows the channel while the session is up, so the
        tracker counts its life as seen whole; Asterisk drops its DialBegin and DialEnd (a
        burst the client fell behind on); its Hangup comes, and it says the channel was
        connected to the dialled number (ConnectedLineNum, as in lab-23.4.1-pjsip's Hangups
        of answered calls; a denied channel's is <unknown>) at the priority after Dial. The
        tracker releases the hold as "no Dial went out under it": a 30 s call, free, no
        record, and no flag for a billing user either."""
        await make_extension(ctx, "100", balance="10")
        await make_rate(ctx, "9", initial_cost="0", initial_time=0, rate="0.01", period=1)
        verdict = await authorize_call(ctx, AuthorizeCall(GATED, "100", NUMBER))
        assert verdict.token
        feed = Feed(cdr_events="off")
        feed.authorized(0, GATED, verdict.token)
        feed.at(40, {"Event": "Hangup", "Channel": "PJSIP/100-00000001", "Uniqueid": GATED,
                     "Linkedid": GATED, "CallerIDNum": "100", "ConnectedLineNum": NUMBER,
                     "Context": "phones", "Exten": NUMBER, "Priority": "7", "Cause": "16",
                     "Cause-txt": "Normal Clearing"})
        feed.later()
        for ended in feed.ended:
            await settle_channel(ctx, ended.settle)
        [(state,)] = await rows(ctx, "SELECT state FROM reservation")
        assert state in ("held", "flagged", "settled"), (
            f"hold {state}: a channel connected to {NUMBER} was released as never dialled")
