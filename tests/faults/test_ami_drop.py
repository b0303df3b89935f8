"""The AMI connection drops while calls are up and comes back: every call is still debited
exactly once, from what Asterisk reports once the follower is back."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from coobill.services.audit import audit
from coobill.services.context import BillingContext
from coobill.services.extensions import show_extension
from coobill.services.reservations import list_held
from tests.conftest import FakeClock
from tests.fakes.ami_server import FakeAmiServer
from tests.faults.calls import Call, billed
from tests.faults.conftest import ChannelsComingAndGoing, start_daemon
from tests.faults.ledger_checks import assert_debited_once

BALANCES = {"100": "50", "101": "50", "102": "50"}


class TestTheManagerConnectionDrops:
    async def test_calls_in_flight_across_a_drop_are_each_debited_once(
        self, ctx: BillingContext, clock: FakeClock, fake_ami: FakeAmiServer, run_daemon,  # type: ignore[no-untyped-def]
        tmp_path: Path,
    ) -> None:
        """Two calls end before the drop, five are up across it, one ends unseen in the gap
        (found in Asterisk's CDR store at the reconnect); the ends replayed twice after the
        reconnect debit nothing more."""
        await billed(ctx, BALANCES)
        before = [Call(0, "100", 5), Call(1, "101", 12)]
        across = [Call(2 + i, ext, 3 + 7 * i) for i, ext in enumerate(["100", "101", "102"] * 2)][
            :5
        ]
        unseen = Call(9, "102", 8)
        master = tmp_path / "Master.csv"
        master.write_text(unseen.master_csv_row())
        daemon = await run_daemon(cdr_csv_path=str(master), cdr_grace_seconds=0.2)
        for call in [*before, *across, unseen]:
            verdict = await call.ask_gate(daemon.gate.port)
            assert (verdict["COOBILL_RESULT"], verdict["COOBILL_LIMIT"]) == ("ALLOW", "600")
        for call in [*before, *across, unseen]:
            await fake_ami.send_events(call.begin())
        for call in before:
            await fake_ami.send_events(call.end())
        await daemon.events.settled.reached(len(before))

        clock.advance(30)  # the calls talk a while before the drop
        fake_ami.live_channels = [c.live() for c in across]
        fake_ami.drop()  # ... and `unseen` hangs up while nobody listens
        await fake_ami.next_login()
        await daemon.events.reconciled.reached(2)
        # Live calls still hold their funds; so does `unseen`, found in the file, until a Cdr
        # grace has passed (its legs' rows are written after they leave the PBX's listing).
        await daemon.events.settled.reached(len(before) + 1)
        held = {h.uniqueid: h.state for h in await list_held(ctx)}
        assert held == {c.uniqueid: "held" for c in across}

        for _ in range(2):
            for call in across:
                await fake_ami.send_events(call.end())
        await daemon.events.settled.reached(len(before) + len(across) + 1)
        await daemon.stop()
        assert daemon.follower is not None
        assert daemon.follower.reconnects == 1
        await assert_debited_once(ctx, [*before, *across, unseen], BALANCES)

    async def test_a_connection_lost_while_reconciling_leaves_the_holds_to_the_next_login(
        self,
        ctx: BillingContext,
        clock: FakeClock,
        pbx: ChannelsComingAndGoing,
    ) -> None:
        """The reconcile reads the holds, then asks the PBX again which channels are up: the
        connection is gone by then, so it flags nothing (it cannot tell a live call from an
        ended one); the next login reconciles, and flags the call that ended unseen."""
        await billed(ctx, BALANCES)
        gone = Call(0, "100", 5)
        daemon = await start_daemon(ctx, pbx)
        try:
            assert (await gone.ask_gate(daemon.gate.port))["COOBILL_RESULT"] == "ALLOW"
            await pbx.send_events(gone.begin())
            clock.advance(30)
            pbx.listings = [[], None, []]  # at the login; when asked again; at the next login
            pbx.drop()  # ... and `gone` hangs up while nobody listens
            await pbx.next_login()
            await daemon.events.reconciled.reached(2)
            await ctx.progress.reconciles_deferred.reached(1)
            assert [(h.uniqueid, h.state) for h in await list_held(ctx)] == [
                (gone.uniqueid, "held")
            ]
            await pbx.next_login()
            await daemon.events.reconciled.reached(3)
        finally:
            await daemon.stop()
        assert [(h.uniqueid, h.state) for h in await list_held(ctx)] == [(gone.uniqueid, "flagged")]
        assert (await show_extension(ctx, "100")).balance == Decimal(50)  # not charged silently
        assert (await audit(ctx)).ok
