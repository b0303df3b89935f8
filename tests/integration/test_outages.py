"""Outages: the daemon killed with SIGKILL mid-call and restarted, the AMI connection lost
mid-call, a call whose end was missed. Nothing is lost, nothing is charged twice."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest

from coobill.daemon import Daemon
from coobill.services.audit import audit
from coobill.services.context import BillingContext
from coobill.services.extensions import show_extension
from coobill.services.reports import list_calls
from coobill.services.reservations import charge, list_held
from tests.fakes.ami_server import FakeAmiServer, event_frames
from tests.faults.calls import Call, billed
from tests.faults.ledger_checks import assert_debited_once
from tests.integration.daemon_process import DaemonProcess
from tests.integration.daemons import (
    ALICE,
    BOB,
    WAIT,
    funded,
    gate_call,
    live_channels,
    start_daemon,
    trace,
)


class TestAKilledDaemon:
    async def test_a_call_live_across_a_sigkill_and_restart_is_debited_exactly_once(
        self, sqlite_ctx: BillingContext, fake_ami: FakeAmiServer
    ) -> None:
        """On SQLite: the daemon runs as `coobill run` in a process of its own, configured by
        COOBILL_* variables, which cannot name the test's PostgreSQL schema."""
        ctx = sqlite_ctx
        url = str(ctx.uow.engine.url)
        await funded(ctx)
        env = {**os.environ, "COOBILL_DATABASE__URL": url, "COOBILL_AGI__PORT": "0",
               "COOBILL_WEB__ENABLED": "false", "COOBILL_AMI__PORT": str(fake_ami.port),
               "COOBILL_AMI__SECRET": "lab-secret", "COOBILL_AMI__CDR_EVENTS": "on",
               "COOBILL_AMI__RECONNECT_SECONDS": "0.05", "COOBILL_LOG__LEVEL": "INFO"}
        events = event_frames(trace())
        first = DaemonProcess(env)
        await first.start()
        await fake_ami.next_login()
        assert (await gate_call(first.gate_port, "sip_answered"))["COOBILL_RESULT"] == "ALLOW"
        await fake_ami.send_events(f for f in events if f.t < 5)  # Alice is talking
        await first.kill()

        fake_ami.live_channels = live_channels({ALICE})
        second = DaemonProcess(env)
        await second.start()
        await fake_ami.next_login()
        await second.until(lambda status: status.reconciled >= 1)
        await fake_ami.send_events(f for f in events if f.t >= 5)  # ... and hangs up
        await second.until(lambda status: status.settled >= 1)
        await fake_ami.send_events(events)  # the whole stream again: nothing more to debit
        assert await second.terminate() == 0

        calls = {c.uniqueid: c for c in (await list_calls(ctx))[0]}
        assert calls[ALICE].billable_seconds == 6
        assert calls[ALICE].cost == Decimal("0.06")
        assert (await show_extension(ctx, "100")).balance == Decimal("49.94")
        assert (await show_extension(ctx, "100")).reserved == 0
        assert (await audit(ctx)).ok


class TestAmiLost:
    async def test_holds_survive_a_dropped_connection_and_calls_end_once(
        self, ctx: BillingContext, fake_ami: FakeAmiServer
    ) -> None:
        await funded(ctx)
        fake_ami.live_channels = live_channels({ALICE, BOB})
        daemon = await start_daemon(ctx, fake_ami)
        try:
            await fake_ami.next_login()
            await gate_call(daemon.gate.port, "sip_answered")  # type: ignore[union-attr]
            await gate_call(daemon.gate.port, "sip_cut_by_limit")  # type: ignore[union-attr]
            events = event_frames(trace())
            await fake_ami.send_events(f for f in events if f.t < 5)
            fake_ami.drop()
            await fake_ami.next_login()
            held = {h.uniqueid for h in await list_held(ctx)}
            assert {ALICE, BOB} <= held  # still held while AMI was away
            await fake_ami.send_events(f for f in events if f.t >= 5)
            await daemon.events.settled.reached(2)
            assert daemon.follower is not None
            assert daemon.follower.reconnects >= 1
        finally:
            await daemon.stop()
        calls = {c.uniqueid: c for c in (await list_calls(ctx))[0]}
        assert (calls[ALICE].billable_seconds, calls[BOB].billable_seconds) == (6, 4)
        assert (await audit(ctx)).ok

    async def test_a_call_that_ended_unseen_is_flagged_then_resolved_by_a_billing_user(
        self, ctx: BillingContext, fake_ami: FakeAmiServer
    ) -> None:
        await funded(ctx)
        daemon = await start_daemon(ctx, fake_ami)
        try:
            await fake_ami.next_login()
            await gate_call(daemon.gate.port, "sip_answered")  # type: ignore[union-attr]
            ctx.clock = _later(ctx.clock, 30)  # the reconnect comes well after the hold
            fake_ami.drop()  # ... and Alice's call ends while nobody listens
            await fake_ami.next_login()
            await daemon.events.reconciled.reached(2)
        finally:
            await daemon.stop()
        flagged = await list_held(ctx, state="flagged")
        assert [h.uniqueid for h in flagged] == [ALICE]
        assert (await show_extension(ctx, "100")).balance == Decimal("50")  # not charged silently
        result = await charge(ctx, ALICE, 6)
        assert result is not None
        assert result.cost == Decimal("0.06")
        assert (await show_extension(ctx, "100")).reserved == 0
        assert (await audit(ctx)).ok

    async def test_a_missed_end_is_settled_from_asterisks_cdr_store(
        self, ctx: BillingContext, fake_ami: FakeAmiServer, tmp_path: Path
    ) -> None:
        master = tmp_path / "Master.csv"
        master.write_text(
            '"","100","9138000001","sipphones","""Alice"" <100>","PJSIP/100-00000000",'
            '"PJSIP/carrier-a-00000001","Dial","PJSIP/138000001@carrier-a,20,L(30000)",'
            '"2026-11-25 12:34:32","2026-11-25 12:34:33","2026-11-25 12:34:39",7,6,'
            f'"ANSWERED","DOCUMENTATION","{ALICE}"\n')
        await funded(ctx)
        # Found in the file at the reconnect, it is settled a Cdr grace later (the rows of its
        # legs' ends are written after they leave the PBX's listing).
        daemon = await start_daemon(ctx, fake_ami, cdr_csv_path=str(master),
                                    cdr_grace_seconds=0.2)
        try:
            await fake_ami.next_login()
            await gate_call(daemon.gate.port, "sip_answered")  # type: ignore[union-attr]
            ctx.clock = _later(ctx.clock, 30)
            fake_ami.drop()
            await fake_ami.next_login()
            await daemon.events.reconciled.reached(2)
            await daemon.events.settled.reached(1)
        finally:
            await daemon.stop()
        calls = {c.uniqueid: c for c in (await list_calls(ctx))[0]}
        assert calls[ALICE].billable_seconds == 6
        assert calls[ALICE].trunk == "carrier-a"
        assert (await show_extension(ctx, "100")).balance == Decimal("49.94")
        assert (await audit(ctx)).ok


def _later(clock, seconds: float):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    return lambda: clock() + timedelta(seconds=seconds)


class TestLiveChecks:
    """While the connection holds, the daemon lists the live channels every
    `ami.live_check_seconds`: a hold whose channel is gone though its end never came (Asterisk
    drops events for a client that falls behind) is settled or flagged then, not at the next
    reconnect; a call whose end did come and is on its way to settlement is left alone."""

    async def checked_twice_more(self, daemon: Daemon) -> None:
        # The first check may have listed the channels before the test changed them.
        await daemon.events.live_checked.reached(daemon.events.live_checked.count + 2, timeout=WAIT)

    async def test_a_call_whose_end_was_lost_is_flagged_without_a_reconnect(
        self, ctx: BillingContext, fake_ami: FakeAmiServer
    ) -> None:
        await billed(ctx, {"100": "50"})
        call = Call(0, "100", 6)
        fake_ami.live_channels = [call.live()]
        daemon = await start_daemon(ctx, fake_ami, live_check_seconds=0.05)
        try:
            await fake_ami.next_login()
            assert (await call.ask_gate(daemon.gate.port))["COOBILL_RESULT"] == "ALLOW"
            await fake_ami.send_events(call.begin())
            await self.checked_twice_more(daemon)
            assert [h.state for h in await list_held(ctx)] == ["held"]  # live: kept
            fake_ami.live_channels = []  # it ended, and its Hangup and Cdr were lost
            await self.checked_twice_more(daemon)
            assert daemon.follower is not None
            assert daemon.follower.reconnects == 0
        finally:
            await daemon.stop()
        assert [(h.uniqueid, h.state) for h in await list_held(ctx)] == [(call.uniqueid, "flagged")]
        assert (await show_extension(ctx, "100")).balance == Decimal("50")  # not charged silently

    async def test_a_lost_end_is_settled_from_the_cdr_store_without_a_reconnect(
        self, ctx: BillingContext, fake_ami: FakeAmiServer, tmp_path: Path
    ) -> None:
        await billed(ctx, {"100": "50"})
        call = Call(0, "100", 6)
        master = tmp_path / "Master.csv"
        master.write_text(call.master_csv_row())
        # An answered call the PBX no longer lists is settled from the file once a Cdr grace
        # has passed (the rows of its legs' ends are written after they leave the listing).
        daemon = await start_daemon(ctx, fake_ami, live_check_seconds=0.05,
                                    cdr_csv_path=str(master), cdr_grace_seconds=0.2)
        try:
            await fake_ami.next_login()
            assert (await call.ask_gate(daemon.gate.port))["COOBILL_RESULT"] == "ALLOW"
            await fake_ami.send_events(call.begin())
            await self.checked_twice_more(daemon)
            await daemon.events.settled.reached(1)
        finally:
            await daemon.stop()
        await assert_debited_once(ctx, [call], {"100": "50"})

    async def test_a_call_waiting_for_its_cdr_is_left_to_it(
        self, ctx: BillingContext, fake_ami: FakeAmiServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        await billed(ctx, {"100": "50"})
        call = Call(0, "100", 6)
        fake_ami.live_channels = [call.live()]  # as Asterisk lists it while it is up
        daemon = await start_daemon(ctx, fake_ami, live_check_seconds=0.05,
                                    cdr_grace_seconds=60)
        try:
            await fake_ami.next_login()
            assert (await call.ask_gate(daemon.gate.port))["COOBILL_RESULT"] == "ALLOW"
            await fake_ami.send_events(call.begin())
            hangups = [f for f in call.end() if f.event == "Hangup"]
            await fake_ami.send_events(hangups)  # its Cdr is late
            fake_ami.live_channels = []  # (gone from the listing once it hung up)
            await self.checked_twice_more(daemon)
            assert [h.state for h in await list_held(ctx)] == ["held"]
            await fake_ami.send_events([f for f in call.end() if f.event == "Cdr"])
            await daemon.events.settled.reached(1)
        finally:
            await daemon.stop()
        await assert_debited_once(ctx, [call], {"100": "50"})
        assert not [r for r in caplog.records if "settlement.flagged" in r.getMessage()]
