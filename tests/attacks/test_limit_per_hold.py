"""Attacks on the limit: an authorization holds the funds of one limit; whatever its Dials
do, the extension must not spend more than it has (issue 13: "an extension can never spend
more than it has")."""

from __future__ import annotations

from coobill.services.commands import AuthorizeCall
from coobill.services.context import BillingContext
from coobill.services.extensions import show_extension
from coobill.services.gate import authorize_call
from coobill.services.settlement import settle_channel
from tests.attacks.events import Feed, cdr, dial_begin, dial_end, hangup
from tests.services.conftest import make_extension, make_rate

GATED = "1700000000.1"
FIRST = ("1700000000.2", "PJSIP/carrier-00000001")
SECOND = ("1700000000.3", "PJSIP/carrier-00000002")
NUMBER = "90012345678"


class TestTwoAnsweredDialsUnderOneAuthorization:
    async def test_they_share_the_one_limit(self, ctx: BillingContext) -> None:
        """Dial(…,${COOBILL_DIAL_OPTIONS}g) answered and cut at its 100 s limit; the dialplan
        goes on to a second Dial with the same options (no second AGI): L() gives it 100 s
        more, and `g` wiped the TIMEOUT(absolute) backstop (ASTERISK.md §7.15). Settlement
        caps each Dial at the hold's limit, not the hold's Dials together: 2.00 charged on a
        1.00 prepaid balance that held 1.00."""
        await make_extension(ctx, "100", balance="1")
        await make_rate(ctx, "9", initial_cost="0", initial_time=0, rate="0.01", period=1)
        verdict = await authorize_call(ctx, AuthorizeCall(GATED, "100", NUMBER))
        assert verdict.limit_seconds == 100
        assert verdict.token
        feed = Feed(cdr_events="on")
        feed.authorized(0, GATED, verdict.token)
        feed.at(0, dial_begin(GATED, *FIRST))
        feed.at(5, dial_end(GATED, *FIRST))
        feed.at(105, hangup(FIRST[0]))
        feed.at(106, dial_begin(GATED, *SECOND))
        feed.at(110, dial_end(GATED, *SECOND))
        feed.at(210, hangup(SECOND[0]), hangup(GATED))
        feed.at(210, cdr(GATED, dest_channel=FIRST[1], start=0, answer=5, end=105),
                cdr(GATED, dest_channel=SECOND[1], start=106, answer=110, end=210))
        [ended] = feed.ended
        await settle_channel(ctx, ended.settle)
        view = await show_extension(ctx, "100")
        assert view.balance >= 0, f"1.00 prepaid, {1 - view.balance} spent on one hold of 1.00"
