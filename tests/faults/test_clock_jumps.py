"""The system clock jumps an hour forward or back while calls are up. The gate dates holds
and settlement dates entries by the wall clock (ctx.clock, the PBX's local time), but nothing
is decided by comparing those dates across the jump: live calls keep their holds, calls that
ended unseen are still found, every call is debited once, at its Cdr's billsec."""

from __future__ import annotations

from pathlib import Path

from coobill.services.context import BillingContext
from coobill.services.reports import list_calls
from coobill.services.reservations import list_held
from tests.conftest import FakeClock
from tests.faults.calls import Call, billed
from tests.faults.conftest import ChannelsComingAndGoing, start_daemon
from tests.faults.ledger_checks import assert_debited_once

BALANCES = {"100": "50", "101": "50"}
HOUR = 3600


async def holds(ctx: BillingContext) -> dict[str, str]:
    return {h.uniqueid: h.state for h in await list_held(ctx)}


class TestTheClockJumps:
    async def test_a_forward_jump_flags_and_settles_nothing_by_mistake(
        self, ctx: BillingContext, clock: FakeClock, pbx: ChannelsComingAndGoing
    ) -> None:
        """`early` and `late` are gated, then the clock jumps an hour forward and `after` is
        gated. At the reconnect the first listing misses `late` (its channel seems to come up
        just after it, as far as the clocks can tell); all three are up, so all keep their holds
        as they were, and each is debited its own billsec when it ends."""
        await billed(ctx, BALANCES)
        early, late, after = Call(0, "100", 7), Call(1, "101", 12), Call(2, "100", 5)
        daemon = await start_daemon(ctx, pbx)
        try:
            for call in (early, late):
                assert (await call.ask_gate(daemon.gate.port))["COOBILL_RESULT"] == "ALLOW"
            clock.advance(HOUR)
            assert (await after.ask_gate(daemon.gate.port))["COOBILL_RESULT"] == "ALLOW"
            for call in (early, late, after):
                await pbx.send_events(call.begin())
            pbx.listings = [[early.live(), after.live()], [c.live() for c in (early, late, after)]]
            pbx.drop()
            await pbx.next_login()
            await daemon.events.reconciled.reached(2)
            assert await holds(ctx) == {c.uniqueid: "held" for c in (early, late, after)}
            assert (await list_calls(ctx))[1] == 0  # nothing settled

            clock.advance(-HOUR)  # and back again, while they talk
            for call in (early, late, after):
                await pbx.send_events(call.end())
            await daemon.events.settled.reached(3)
        finally:
            await daemon.stop()
        await assert_debited_once(ctx, [early, late, after], BALANCES)

    async def test_a_backward_jump_leaves_live_holds_alone_and_still_finds_a_missed_end(
        self, ctx: BillingContext, clock: FakeClock, pbx: ChannelsComingAndGoing,
        tmp_path: Path,
    ) -> None:
        """`up` and `gone` are gated, the clock jumps an hour back, `after` is gated (its hold
        dated an hour before theirs). `gone` ends while the AMI connection is down: at the
        reconnect it is settled from Asterisk's CDR store although its hold is dated "later"
        than the reconnect; `up` and `after`, still up, keep their holds."""
        await billed(ctx, BALANCES)
        up, gone, after = Call(0, "100", 9), Call(1, "101", 4), Call(2, "101", 6)
        master = tmp_path / "Master.csv"
        master.write_text(gone.master_csv_row())
        daemon = await start_daemon(ctx, pbx, cdr_csv_path=str(master), cdr_grace_seconds=0.2)
        try:
            for call in (up, gone):
                assert (await call.ask_gate(daemon.gate.port))["COOBILL_RESULT"] == "ALLOW"
            clock.advance(-HOUR)
            assert (await after.ask_gate(daemon.gate.port))["COOBILL_RESULT"] == "ALLOW"
            for call in (up, gone, after):
                await pbx.send_events(call.begin())
            pbx.live_channels = [up.live(), after.live()]
            pbx.drop()  # ... and `gone` hangs up unseen
            await pbx.next_login()
            await daemon.events.reconciled.reached(2)
            # `gone`, found in the file, is settled a Cdr grace later (the rows of its legs'
            # ends are written after they leave the PBX's listing).
            await daemon.events.settled.reached(1)
            assert await holds(ctx) == {up.uniqueid: "held", after.uniqueid: "held"}

            for call in (up, after):
                await pbx.send_events(call.end())
            await daemon.events.settled.reached(3)
        finally:
            await daemon.stop()
        await assert_debited_once(ctx, [up, gone, after], BALANCES)
