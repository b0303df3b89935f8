"""Issue 13's scenarios, each as the review reproduced it, against the daemon (the gate over
FastAGI, settlement over a fake Asterisk manager speaking the recorded pjsip calls) on SQLite
and PostgreSQL: no call free, none charged twice, no funds stuck."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path

from coobill.agi.server import GateOptions, GateServer
from coobill.daemon import Daemon
from coobill.services import holds, reservations
from coobill.services.audit import audit
from coobill.services.commands import AuthorizeCall
from coobill.services.context import BillingContext
from coobill.services.extensions import show_extension
from coobill.services.gate import authorize_call
from coobill.services.rates import edit_rate, list_rates
from coobill.services.reports import list_calls
from coobill.services.settings import change_settings
from coobill.services.settlement import settle_call
from tests.fakes.ami_server import FakeAmiServer, Frame, with_timestamps
from tests.faults.calls import Call, billed
from tests.faults.ledger_checks import debits_by_call, holds_left
from tests.faults.test_ledger_locked import ledger_locked
from tests.integration.daemons import start_daemon
from tests.services.conftest import authorize, ended

BALANCE = {"100": "50"}


async def connected(daemon: Daemon, fake_ami: FakeAmiServer, times: int = 1) -> None:
    """Logged in to AMI and reconciled (the daemon follows a channel whole from here on)."""
    await fake_ami.next_login()
    await daemon.events.reconciled.reached(times)


async def gap(daemon: Daemon, fake_ami: FakeAmiServer, live: list[Frame], times: int) -> None:
    """AMI drops; whatever Asterisk says meanwhile is lost; it comes back listing `live`."""
    fake_ami.live_channels = live
    fake_ami.drop()
    await connected(daemon, fake_ami, times)


class MovedClock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def killed(daemon: Daemon) -> None:
    """As SIGKILL leaves it: nothing of it runs any more, nothing was drained or settled."""
    assert daemon.follower is not None
    assert daemon.gate is not None
    tasks = list(daemon.follower._tasks.values())
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if daemon.follower._connection is not None:
        daemon.follower._connection.close()
    await daemon.gate.close(drain_timeout=0)


async def state_of(ctx: BillingContext, uniqueid: str) -> list[tuple[str, str]]:
    return [(h.state, h.note) for h in await reservations.list_held(ctx) if h.uniqueid == uniqueid]


class TestADialBeginMissedInAGap:
    """1. AMI drops while the gated channel dials and is answered; after the reconnect the
    channel is listed live; it hangs up after 30 s of talk."""

    async def test_without_cdr_events_the_hold_is_flagged_not_released_free(
        self, ctx: BillingContext, fake_ami: FakeAmiServer
    ) -> None:
        await billed(ctx, BALANCE)
        call = Call(0, "100", 30)
        daemon = await start_daemon(ctx, fake_ami, cdr_events="off")
        try:
            await connected(daemon, fake_ami)
            assert (await call.ask_gate(daemon.gate.port))["COOBILL_RESULT"] == "ALLOW"  # type: ignore[union-attr]
            await gap(daemon, fake_ami, [call.live()], 2)  # DialBegin, DialEnd: lost
            await fake_ami.send_events([f for f in call.end() if f.event == "Hangup"])
            await daemon.events.settled.reached(1)
        finally:
            await daemon.stop()
        [(state, note)] = await state_of(ctx, call.uniqueid)
        assert state == "flagged"
        assert "not following it whole" in note
        assert (await show_extension(ctx, "100")).balance == Decimal("50")
        assert (await audit(ctx)).ok

    async def test_without_cdr_events_asterisks_cdr_store_settles_it(
        self, ctx: BillingContext, fake_ami: FakeAmiServer, tmp_path: Path
    ) -> None:
        await billed(ctx, BALANCE)
        call = Call(0, "100", 30)
        master = tmp_path / "Master.csv"
        master.write_text(call.master_csv_row())
        daemon = await start_daemon(ctx, fake_ami, cdr_events="off", cdr_csv_path=str(master),
                                    cdr_csv_gmt=False)
        try:
            await connected(daemon, fake_ami)
            assert (await call.ask_gate(daemon.gate.port))["COOBILL_RESULT"] == "ALLOW"  # type: ignore[union-attr]
            await gap(daemon, fake_ami, [call.live()], 2)
            await fake_ami.send_events([f for f in call.end() if f.event == "Hangup"])
            await daemon.events.settled.reached(1)
        finally:
            await daemon.stop()
        assert await holds_left(ctx) == []
        assert (await show_extension(ctx, "100")).balance == Decimal("49.70")
        assert (await debits_by_call(ctx))[call.uniqueid] == (1, Decimal("0.30"))

    async def test_a_cdr_after_the_grace_charges_the_tariff_it_was_allowed_at(
        self, ctx: BillingContext, fake_ami: FakeAmiServer
    ) -> None:
        """The rate doubles mid-call: the late Cdr is charged at the authorization's tariff,
        not recorded ungated at today's rate."""
        await billed(ctx, BALANCE)
        call = Call(0, "100", 30)
        daemon = await start_daemon(ctx, fake_ami, cdr_events="on", cdr_grace_seconds=0.1)
        try:
            await connected(daemon, fake_ami)
            assert (await call.ask_gate(daemon.gate.port))["COOBILL_RESULT"] == "ALLOW"  # type: ignore[union-attr]
            [rate] = await list_rates(ctx)
            await edit_rate(ctx, rate.id, rate="0.02")
            await gap(daemon, fake_ami, [call.live()], 2)
            await fake_ami.send_events([f for f in call.end() if f.event == "Hangup"])
            await daemon.events.settled.reached(1)  # the grace ran out: flagged for now
            assert [s for s, _ in await state_of(ctx, call.uniqueid)] == ["flagged"]
            await fake_ami.send_events([f for f in call.end() if f.event == "Cdr"])
            await daemon.events.settled.reached(2)
        finally:
            await daemon.stop()
        [record] = (await list_calls(ctx))[0]
        assert (record.gated, record.billable_seconds, record.cost) == (True, 30, Decimal("0.30"))
        assert await holds_left(ctx) == []
        assert (await audit(ctx)).ok


@dataclass(frozen=True)
class TwoDials:
    """One channel that dials twice (`Dial(...,g)`, then the gate again, then another Dial):
    each Dial its own dialled channel, its own Cdr; one Hangup of the caller."""

    call: Call
    first_billsec: int
    second_billsec: int

    def dial(self, n: int, billsec: int) -> tuple[list[Frame], Frame]:
        """The n-th Dial's events (up to the dialled party's Hangup) and its Cdr."""
        dest_uid = f"{self.call.uniqueid}{n}9"
        dest = f"PJSIP/carrier-a-{n:08x}"
        start = datetime(2026, 11, 25, 12, 34, 32) + timedelta(seconds=100 * n)
        answer, end = start + timedelta(seconds=1), start + timedelta(seconds=1 + billsec)
        frames = []
        for f in self.call.begin() + [f for f in self.call.end() if f.event == "Hangup"]:
            if f.event == "Hangup" and f.get("Uniqueid") == self.call.uniqueid:
                continue  # the caller stays: the dialplan goes on after Dial returns
            frames.append(_retarget(f, self.call, dest_uid, dest))
        [cdr] = [f for f in self.call.end() if f.event == "Cdr"]
        cdr = cdr.replace(DestinationChannel=dest, StartTime=f"{start:%Y-%m-%d %H:%M:%S}",
                          AnswerTime=f"{answer:%Y-%m-%d %H:%M:%S}",
                          EndTime=f"{end:%Y-%m-%d %H:%M:%S}", BillableSeconds=str(billsec),
                          Duration=str(billsec + 1))
        return frames, cdr

    def caller_hangup(self) -> list[Frame]:
        return [f for f in self.call.end()
                if f.event == "Hangup" and f.get("Uniqueid") == self.call.uniqueid]


def _retarget(f: Frame, call: Call, dest_uid: str, dest: str) -> Frame:
    headers = []
    for key, value in f.headers:
        if key in ("DestUniqueid", "Uniqueid") and value not in (call.uniqueid, ""):
            value = dest_uid
        elif key in ("DestChannel", "Channel") and value.startswith("PJSIP/carrier-a-"):
            value = dest
        headers.append((key, value))
    return Frame(tuple(headers), f.t, f.sent)


class TestAChannelThatDialsTwice:
    """2. `Dial(…,g)` returns, the dialplan asks the gate again and dials a second number:
    talk 60 s, then 30 s."""

    async def test_each_dial_is_billed_once_at_its_own_tariff(
        self, ctx: BillingContext, fake_ami: FakeAmiServer
    ) -> None:
        await billed(ctx, {"100": "5"})
        channel = TwoDials(Call(0, "100"), 60, 30)
        daemon = await start_daemon(ctx, fake_ami, cdr_events="on")
        ticks = MovedClock()  # the tracker's monotonic clock: the first call really talks 60 s
        assert daemon.follower is not None
        daemon.follower.tracker._monotonic = ticks
        try:
            await connected(daemon, fake_ami)
            first = await channel.call.ask_gate(daemon.gate.port)  # type: ignore[union-attr]
            assert (first["COOBILL_RESULT"], first["COOBILL_LIMIT"]) == ("ALLOW", "500")
            frames, first_cdr = channel.dial(1, 60)
            await fake_ami.send_events(frames)
            ticks.now += 62
            [rate] = await list_rates(ctx)
            await edit_rate(ctx, rate.id, rate="0.02")  # the second Dial is dearer
            second = await channel.call.ask_gate(daemon.gate.port)  # type: ignore[union-attr]
            # The first Dial's hold stays (its Cdr has not come), lowered to what at most the
            # time since its authorization costs; the second gets the rest.
            assert second["COOBILL_RESULT"] == "ALLOW"
            [first_hold, second_hold] = list(await reservations.list_held(ctx))
            assert first_hold.state == second_hold.state == "held"
            assert first_hold.amount < Decimal("1")
            frames, second_cdr = channel.dial(2, 30)
            await fake_ami.send_events(frames + channel.caller_hangup() + [first_cdr, second_cdr])
            await daemon.events.settled.reached(1)
        finally:
            await daemon.stop()
        calls = sorted((c.billable_seconds, c.cost) for c in (await list_calls(ctx))[0])
        assert calls == [(30, Decimal("0.60")), (60, Decimal("0.60"))]
        assert (await show_extension(ctx, "100")).balance == Decimal("3.80")
        assert await holds_left(ctx) == []
        assert (await audit(ctx)).ok


class TestMasterCsvRecovery:
    """3. A failover Dial (first target BUSY, then ANSWERED 30 s) that ends during an AMI gap,
    settled from Master.csv with the stock usegmtime = yes."""

    async def test_the_answered_row_is_billed_and_its_gmt_times_shown_in_the_pbx_zone(
        self, ctx: BillingContext, fake_ami: FakeAmiServer, tmp_path: Path
    ) -> None:
        await billed(ctx, BALANCE)
        await change_settings(ctx, timezone="Asia/Shanghai")
        call = Call(0, "100", 30)
        busy = (
            call.master_csv_row()
            .replace("PJSIP/carrier-a-00000001", "PJSIP/carrier-b-00000009")
            .replace(',31,30,"ANSWERED"', ',5,0,"BUSY"')
            .replace('"2026-11-25 12:34:33"', '""')
        )
        master = tmp_path / "Master.csv"
        master.write_text(busy + call.master_csv_row())
        # GMT: the default. Found in the file at the reconnect, the call is settled a Cdr
        # grace later (the rows of its legs' ends are written after they leave the listing).
        daemon = await start_daemon(ctx, fake_ami, cdr_csv_path=str(master),
                                    cdr_grace_seconds=0.2)
        try:
            await connected(daemon, fake_ami)
            assert (await call.ask_gate(daemon.gate.port))["COOBILL_RESULT"] == "ALLOW"  # type: ignore[union-attr]
            await gap(daemon, fake_ami, [], 2)  # it ended while nobody listened
            await daemon.events.settled.reached(1)
        finally:
            await daemon.stop()
        [record] = (await list_calls(ctx))[0]
        assert (record.disposition, record.billable_seconds, record.cost, record.trunk) == (
            "ANSWERED",
            30,
            Decimal("0.30"),
            "carrier-a",
        )
        # 12:34:32 GMT is 20:34:32 in Shanghai
        assert record.start == datetime(2026, 11, 25, 20, 34, 32)
        assert await holds_left(ctx) == []
        assert (await audit(ctx)).ok


class TestReleaseRacingSettlement:
    """4. A billing user releases a flagged hold while its late Cdr settles it: the hold moves
    once, whichever wins; reserved never goes below zero."""

    async def test_forty_races_move_each_hold_once(
        self, ctx: BillingContext, other_ctx: BillingContext
    ) -> None:
        await billed(ctx, {"100": "500"})
        for n in range(40):
            uid = f"race-{n}"
            await authorize(ctx, uid, number="9138000001")
            await reservations.reconcile(ctx, set(), asked_at=datetime(2100, 1, 1))
            results = await asyncio.gather(
                reservations.release(other_ctx, uid),
                settle_call(ctx, ended(uid, number="9138000001", billsec=20)),
                return_exceptions=True,
            )
            view = await show_extension(ctx, "100")
            assert view.reserved == 0, (n, results)
        report = await audit(ctx)
        assert report.ok, report.problems


class TestAnUndoOnlyTouchesItsOwnHold:
    """5. The gate gave up on an authorization (its deadline, the ledger locked); the dialplan
    asked again on the same channel and was allowed; the first one's late undo must not
    delete that newer hold, or a concurrent call would spend the same funds again."""

    async def test_the_late_undo_leaves_the_newer_hold_of_the_channel(
        self, ctx: BillingContext
    ) -> None:
        await billed(ctx, {"100": "6"})
        first = await authorize(ctx, "c1", number="9138000001")
        assert first.token is not None
        assert first.held == Decimal("6")
        # The daemon tells the second authorization the first's Dial cannot have talked.
        again = await authorize_call(
            ctx,
            AuthorizeCall(
                "c1", "100", "9138000001", channel="PJSIP/x", earlier=((first.token, 0),)
            ),
        )
        assert again.allowed
        assert again.held == Decimal("6")
        # ... and now the first authorization's undo comes, late.
        undone = await ctx.uow.run(lambda s: holds.undo(s, first.token or "", at=datetime.now()))
        assert undone is not None
        assert undone.amount == 0
        [held] = await reservations.list_held(ctx)
        assert (held.uniqueid, held.amount) == ("c1", Decimal("6"))
        assert (await show_extension(ctx, "100")).reserved == Decimal("6")
        concurrent = await authorize(ctx, "c2", number="9138000001")
        assert (concurrent.allowed, concurrent.reason) == (False, "no_funds")
        assert (await audit(ctx)).ok


class TestNoFundsStuck:
    """6. The gate's timeout path leaves nothing held, on PostgreSQL too; a hold whose channel
    never dialled is released from the evidence after a restart, not left flagged."""

    async def test_an_authorization_given_up_on_is_undone_whatever_the_database(
        self, ctx: BillingContext, database_url: tuple[str, str | None]
    ) -> None:
        await billed(ctx, {"100": "6"})
        gate = GateServer(partial(authorize_call, ctx), GateOptions(port=0, deadline_seconds=1))
        await gate.start()
        loop = asyncio.get_running_loop()
        release: asyncio.Future[None] = loop.create_future()
        try:
            async with ledger_locked(database_url, release):
                denied = await Call(0, "100").ask_gate(gate.port)
                release.set_result(None)
            assert (denied["COOBILL_RESULT"], denied["COOBILL_REASON"]) == ("DENY", "error")
            await ctx.uow.drain()  # the abandoned authorization committed, then was undone
            assert await holds_left(ctx) == []
            assert (await show_extension(ctx, "100")).reserved == 0
            allowed = await Call(1, "100").ask_gate(gate.port)
            assert (allowed["COOBILL_RESULT"], allowed["COOBILL_LIMIT"]) == ("ALLOW", "600")
        finally:
            await gate.close()
        assert (await audit(ctx)).ok

    async def test_a_restarted_daemon_releases_a_hold_whose_channel_never_dialled(
        self, ctx: BillingContext, fake_ami: FakeAmiServer
    ) -> None:
        """Killed between ALLOW and Dial: the next daemon follows the live channel; it hangs
        up without a Dial (its Cdr says Hangup), and the hold goes back."""
        await billed(ctx, BALANCE)
        call = Call(0, "100", 30)
        first = await start_daemon(ctx, fake_ami)
        await connected(first, fake_ami)
        assert (await call.ask_gate(first.gate.port))["COOBILL_RESULT"] == "ALLOW"  # type: ignore[union-attr]
        await killed(first)
        fake_ami.live_channels = [call.live()]
        second = await start_daemon(ctx, fake_ami)
        try:
            await connected(second, fake_ami)
            [cdr] = [f for f in call.end() if f.event == "Cdr"]
            no_dial = cdr.replace(
                LastApplication="Hangup",
                LastData="21",
                DestinationChannel="",
                Disposition="NO ANSWER",
                AnswerTime="",
                BillableSeconds="0",
            )
            hangup = [
                f for f in call.end() if f.event == "Hangup" and f.get("Uniqueid") == call.uniqueid
            ]
            await fake_ami.send_events([*hangup, no_dial])
            await second.events.settled.reached(1)
        finally:
            await second.stop()
        assert [(s, n) for s, n in await state_of(ctx, call.uniqueid)] == []
        assert (await show_extension(ctx, "100")).reserved == 0
        assert await list_calls(ctx) == ([], 0)
        assert (await audit(ctx)).ok


class TestThePbxTimeZone:
    """10. `coobill settings set --timezone` reaches settlement's times and the rating of
    ungated calls without a restart."""

    async def test_a_zone_changed_while_running_applies_to_the_next_call(
        self, ctx: BillingContext, fake_ami: FakeAmiServer
    ) -> None:
        await billed(ctx, BALANCE)
        call = Call(0, "100", 30)
        frames = call.begin() + call.end()
        epoch = datetime(2026, 11, 25, 12, 34, 32, tzinfo=UTC).timestamp()
        stamped = with_timestamps([f for f in frames if f.event != "Cdr"], epoch - frames[0].t)
        daemon = await start_daemon(ctx, fake_ami, cdr_events="off")
        try:
            await connected(daemon, fake_ami)
            await change_settings(ctx, timezone="Asia/Shanghai")  # after the daemon started
            await fake_ami.send_events(stamped)  # an ungated call: no gate asked
            await daemon.events.settled.reached(1)
        finally:
            await daemon.stop()
        [record] = (await list_calls(ctx))[0]
        assert record.start is not None
        assert record.start.hour == 20
        assert not record.gated
