"""Attacks on Local channels (ASTERISK.md §3, lab-23.4.1-basic): one call is several channels,
and exactly one of them is the billable leg."""

from __future__ import annotations

from decimal import Decimal

from coobill.services.commands import AuthorizeCall
from coobill.services.context import BillingContext
from coobill.services.extensions import show_extension
from coobill.services.gate import authorize_call
from coobill.services.settlement import settle_channel
from tests.attacks.events import Feed, cdr, dial_begin, dial_end, hangup
from tests.services.conftest import make_extension, make_rate

PHONE = ("1700000000.1", "PJSIP/100-00000001")
LOCAL_1 = ("1700000000.2", "Local/90012345678@coobill-outbound-00000001;1")
LOCAL_2 = ("1700000000.3", "Local/90012345678@coobill-outbound-00000001;2")
TRUNK = ("1700000000.4", "PJSIP/carrier-00000002")
NUMBER = "90012345678"


class TestAPhoneDiallingThroughALocalChannel:
    async def test_the_call_is_charged_once(self, ctx: BillingContext) -> None:
        """The phone (PJSIP/100) runs Dial(Local/9…@coobill-outbound); the Local ;2 half runs
        the gate and Dial(PJSIP/…@carrier). Two Dial Cdrs: the gated one (;2 -> carrier) and
        the phone's (PJSIP/100 -> Local ;1). settlement._is_internal calls the second one
        outbound (the trunk is the Local channel's context, not a phone; the number is not an
        extension's), so it is recorded ungated and charged again, at today's rate."""
        await make_extension(ctx, "100", balance="10")
        await make_rate(ctx, "9", initial_cost="0", initial_time=0, rate="0.01", period=1)
        feed = Feed(cdr_events="on")
        feed.at(0, dial_begin(PHONE[0], *LOCAL_1, channel=PHONE[1]))
        verdict = await authorize_call(ctx, AuthorizeCall(LOCAL_2[0], "100", NUMBER,
                                                          channel=LOCAL_2[1]))
        assert verdict.token
        feed.authorized(0, LOCAL_2[0], verdict.token)
        feed.at(0, dial_begin(LOCAL_2[0], *TRUNK, channel=LOCAL_2[1]))
        feed.at(5, dial_end(LOCAL_2[0], *TRUNK), dial_end(PHONE[0], *LOCAL_1))
        feed.at(35, hangup(TRUNK[0]), hangup(LOCAL_2[0]), hangup(LOCAL_1[0]), hangup(PHONE[0]))
        feed.at(35, cdr(LOCAL_2[0], dest_channel=TRUNK[1], start=0, answer=5, end=35,
                        channel=LOCAL_2[1]),
                cdr(PHONE[0], dest_channel=LOCAL_1[1], start=0, answer=5, end=35,
                    channel=PHONE[1]))
        feed.later()
        for ended in feed.ended:
            await settle_channel(ctx, ended.settle)
        spent = Decimal(10) - (await show_extension(ctx, "100")).balance
        assert spent == Decimal("0.30"), f"30 s at 0.01/s charged {spent}"
