"""A channel that dialled twice, each Dial under an authorization of its own (Dial(…,g), the
gate asked again), whose end the daemon missed (issue 13, items 2 and 3): Master.csv names no
authorization, so each Dial goes under the hold taken by the time it began - never both under
the newest, which would charge the first Dial at the second's tariff and limit and release the
first hold as if nothing went out under it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from coobill.ami.cdr import CdrRecord
from coobill.ami.cdr_store import channel_from_records
from coobill.services.commands import AuthorizeCall
from coobill.services.context import BillingContext
from coobill.services.gate import authorize_call
from coobill.services.settings import billing_settings
from coobill.services.settlement import settle_channel
from tests.conftest import FakeClock
from tests.services.conftest import make_extension, make_rate, rows

GATED = "1700000100.1"
NUMBER = "90012345678"


def row(leg: str, start: str, answer: str, end: str, billsec: int) -> list[str]:
    """A Master.csv row of the gated channel (loguniqueid = yes)."""
    return ["", "100", NUMBER, "phones", '"Alice" <100>', "PJSIP/100-00000001", leg, "Dial",
            leg, start, answer, end, str(billsec + 1), str(billsec), "ANSWERED",
            "DOCUMENTATION", GATED]


async def test_each_dial_goes_under_the_hold_taken_before_it(
    ctx: BillingContext, clock: FakeClock
) -> None:
    """Allowed at 0 (limit 60 s at 0.10 a second: 6.00 held of 10.00), its first Dial talks
    20 s; asked again at 30 (a second authorization), its second Dial talks 10 s. Both are
    recovered from Master.csv: 2.00 + 1.00 charged, each under its own hold."""
    await make_extension(ctx, "100", balance="10")
    await make_rate(ctx, "9", initial_cost="0", initial_time=0, rate="0.10", period=1)
    local = (await billing_settings(ctx)).local
    start = local(clock())

    def at(seconds: int) -> str:
        return f"{start + timedelta(seconds=seconds):%Y-%m-%d %H:%M:%S}"

    first = await authorize_call(ctx, AuthorizeCall(GATED, "100", NUMBER))
    clock.advance(30)
    second = await authorize_call(ctx, AuthorizeCall(GATED, "100", NUMBER,
                                                     earlier=((first.token or "", 31),)))
    assert first.allowed
    assert second.allowed
    records = [CdrRecord.from_master_csv(r, gmt=False) for r in (
        row("PJSIP/carrier-00000002", at(1), at(5), at(25), 20),
        row("PJSIP/carrier-00000003", at(31), at(35), at(45), 10))]
    clock.advance(20)
    await settle_channel(ctx, channel_from_records(GATED, [r for r in records if r]))
    charged = await rows(ctx, "SELECT r.token, c.billable_seconds, c.cost FROM call c "
                         "JOIN reservation r ON r.id = c.reservation_id ORDER BY c.id")
    assert [(token, seconds, Decimal(int(cost)) / 10000) for token, seconds, cost in charged] == [
        (first.token, 20, Decimal("2.00")), (second.token, 10, Decimal("1.00"))]
    states = await rows(ctx, "SELECT state FROM reservation ORDER BY id")
    assert states == [("settled",), ("settled",)]
