"""Attacks on blind transfers whose target is another outbound number (issue 13, item 11:
"the transfer target pays nothing" assumes an internal target).

A blind transfer (the `#` feature of Dial option t/T, the BlindTransfer action, a SIP REFER)
sends the external party's channel into the transferer's context (or TRANSFER_CONTEXT) - on a
PBX whose phones' context includes [coobill-outbound] (etc/asterisk/extensions_coobill.conf's
own instructions), to the gate. That channel asks the gate as CALLERID(num), which on the
external leg is the number the caller dialled (lab-23.4.1-transfer: the external leg's Cdr has
Source 913800000500), an unknown extension: `unknown_extension = allow_free` (the default)
allows it unlimited and unbilled."""

from __future__ import annotations

from decimal import Decimal

from coobill.services.commands import AuthorizeCall
from coobill.services.context import BillingContext
from coobill.services.extensions import show_extension
from coobill.services.gate import authorize_call
from coobill.services.settlement import settle_channel
from tests.attacks.events import Feed, cdr, dial_begin, dial_end, hangup
from tests.services.conftest import make_extension, make_rate

GATED = ("1700000000.1", "PJSIP/100-00000001")
CHEAP = ("1700000000.2", "PJSIP/carrier-00000002")  # the external leg, then transferred
PREMIUM = ("1700000010.3", "PJSIP/carrier-00000003")
CHEAP_NUMBER, PREMIUM_NUMBER = "91234567", "90090012345"


class TestABlindTransferToAnotherOutboundNumber:
    async def test_the_second_number_is_charged_at_its_own_rate(self, ctx: BillingContext) -> None:
        """100 dials a cheap local number (0.01/s), it answers; 100 blind-transfers it to a
        premium number (1.00/s), which talks 60 s. The tracker bills the external leg's whole
        time to 100 at the cheap tariff (the leg's own DialBegin is ignored: it is a dest of a
        followed Dial); the premium Dial went out under an unbilled hold of its own. 100 pays
        0.67 for 60 s of a 1.00/s number."""
        await make_extension(ctx, "100", balance="1000")  # the first call holds 108 of it
        await make_rate(ctx, "91", initial_cost="0", initial_time=0, rate="0.01", period=1)
        await make_rate(ctx, "900", initial_cost="0", initial_time=0, rate="1.00", period=1)
        feed = Feed(cdr_events="on")
        first = await authorize_call(ctx, AuthorizeCall(GATED[0], "100", CHEAP_NUMBER,
                                                        channel=GATED[1]))
        assert first.token
        feed.authorized(0, GATED[0], first.token, extension="100")
        feed.at(0, dial_begin(GATED[0], *CHEAP, exten=CHEAP_NUMBER, channel=GATED[1]))
        feed.at(5, dial_end(GATED[0], *CHEAP))
        # the blind transfer: the caller leaves, the external leg runs the gated context
        feed.at(10, hangup(GATED[0], GATED[1]),
                cdr(GATED[0], dest_channel=CHEAP[1], start=0, answer=5, end=10,
                    destination=CHEAP_NUMBER, channel=GATED[1]))
        # As the daemon asks the gate: the tracker says who pays for the call this leg is of.
        feed.clock.at(10)
        payer = feed.tracker.paid_by(CHEAP[0]) or CHEAP_NUMBER
        second = await authorize_call(ctx, AuthorizeCall(CHEAP[0], payer, PREMIUM_NUMBER,
                                                         channel=CHEAP[1]))
        assert second.allowed, "the gate refused the transferred leg (that would hold)"
        if second.token:
            feed.authorized(10, CHEAP[0], second.token)
        feed.at(10, dial_begin(CHEAP[0], *PREMIUM, exten=PREMIUM_NUMBER,
                               caller=CHEAP_NUMBER, channel=CHEAP[1]))
        feed.at(12, dial_end(CHEAP[0], *PREMIUM))
        feed.at(72, hangup(PREMIUM[0]), hangup(CHEAP[0], CHEAP[1]),
                cdr(CHEAP[0], dest_channel=PREMIUM[1], start=10, answer=12, end=72,
                    destination=PREMIUM_NUMBER, source=CHEAP_NUMBER, channel=CHEAP[1]))
        feed.later()
        for ended in feed.ended:
            await settle_channel(ctx, ended.settle)
        spent = Decimal(1000) - (await show_extension(ctx, "100")).balance
        assert spent >= Decimal("60"), (
            f"60 s of a 1.00/s number, reached by transferring a 0.01/s call, cost 100 {spent}")
