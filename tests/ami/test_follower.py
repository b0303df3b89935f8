"""AmiFollower over real panoramisk against the fake AMI server: replay, gaps, failures."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from panoramisk.ami_protocol import AMIProtocol

from coobill.ami import AmiConnection, AmiConnectionLost, AmiFollower, AmiLoginRefused, AmiTimeout
from coobill.ami.session import _Protocol
from coobill.services.commands import Disposition
from tests.ami.conftest import WAIT, LogWatch, Recorder, capture_start, dialled
from tests.fakes.ami_server import (
    BASIC,
    PJSIP,
    FakeAmiServer,
    Frame,
    event_frames,
    read_trace,
    reply_frames,
    with_timestamps,
)

StartServer = Callable[..., Awaitable[FakeAmiServer]]
Follow = Callable[..., Awaitable[tuple[AmiFollower, Recorder]]]


def recorded_live_channels(pjsip_trace: list[Frame]) -> list[Frame]:
    """The CoreShowChannel events recorded while the two answered pjsip calls were up."""
    return [f for f in reply_frames(pjsip_trace, "live") if f.event == "CoreShowChannel"]


def without_cdrs(trace: list[Frame]) -> list[Frame]:
    """A PBX without cdr_manager but with timestampevents=yes (replayed at once, so the
    times must travel in the events)."""
    events = [f for f in event_frames(trace) if f.event != "Cdr"]
    return with_timestamps(events, capture_start(trace))


def assert_truth(recorder: Recorder, lab: Path) -> None:
    truth = dialled(lab)
    ours = [c for c in recorder.calls if c.uniqueid in truth]
    assert sorted(c.uniqueid for c in ours) == sorted(truth)
    for call in ours:
        scenario = truth[call.uniqueid]
        assert call.record is not None
        assert call.record.billable_seconds == scenario["billsec"]
        assert call.record.disposition == Disposition(scenario["disposition"])
        assert call.record.trunk == scenario.get("trunk", "carrier")


class TestReplay:
    @pytest.mark.parametrize("lab", [BASIC, PJSIP], ids=["basic", "pjsip"])
    async def test_a_whole_trace_ends_exactly_the_expected_calls(
        self, lab: Path, ami_server: StartServer, follow: Follow
    ) -> None:
        """Every event frame of a lab, sent at once: each dialled call ends once, as the CDR
        says, and nothing else."""
        server = await ami_server()
        follower, recorder = await follow(server)
        await server.next_login()
        await recorder.until(lambda: len(recorder.reconciled) == 1)
        assert recorder.reconciled == [set()]

        await server.send_events(event_frames(read_trace(lab / "ami-all.txt")))
        await recorder.until(lambda: len(recorder.calls) >= len(dialled(lab)))
        await follower.stop(drain_seconds=WAIT)

        assert_truth(recorder, lab)
        assert len(recorder.calls) == len(dialled(lab))
        assert follower.reconnects == 0

    async def test_events_go_step_by_step_and_calls_end_as_they_finish(
        self, ami_server: StartServer, follow: Follow, pjsip_trace: list[Frame]
    ) -> None:
        """Replayed up to the middle, only the busy call has ended; the rest end later."""
        server = await ami_server()
        _, recorder = await follow(server)
        await server.next_login()
        events = event_frames(pjsip_trace)
        await server.send_events(f for f in events if f.t < 5)
        await recorder.until(lambda: len(recorder.calls) == 1)
        assert recorder.uniqueids() == ["1795610072.4"]

        await server.send_events(f for f in events if f.t >= 5)
        await recorder.until(lambda: len(recorder.calls) == 3)
        assert_truth(recorder, PJSIP)


class TestReconnect:
    async def test_a_drop_mid_call_reconnects_reconciles_and_ends_each_call_once(
        self, ami_server: StartServer, follow: Follow, pjsip_trace: list[Frame],
        log_watch: LogWatch,
    ) -> None:
        """Connection cut while two calls talk: the follower logs and counts the reconnect,
        CoreShowChannels gives the live channels, and each call still ends once."""
        server = await ami_server(live_channels=recorded_live_channels(pjsip_trace))
        follower, recorder = await follow(server)
        first = await server.next_login()
        events = event_frames(pjsip_trace)
        await server.send_events(f for f in events if f.t < 5)
        await recorder.until(lambda: len(recorder.calls) == 1)

        server.drop()
        second = await server.next_login()
        assert second is not first
        await recorder.until(lambda: len(recorder.reconciled) == 2)
        # The live channels by uniqueid and by name (CoreShowChannel's Uniqueid, Channel).
        assert {u for u in recorder.reconciled[1] if "/" not in u} == {
            "1795610072.0", "1795610072.1", "1795610072.2", "1795610072.3"}
        assert "PJSIP/carrier-a-00000001" in recorder.reconciled[1]
        assert follower.reconnects == 1
        assert follower.connected
        assert follower.progress.lost.count == 1  # the one drop
        assert follower.progress.retries.count == 1  # one wait, then the second session
        assert log_watch.count("ami.disconnected") == 1  # and it is told

        await server.send_events(f for f in events if f.t >= 5)
        await recorder.until(lambda: len(recorder.calls) == 3)
        await follower.stop(drain_seconds=WAIT)
        assert_truth(recorder, PJSIP)
        assert len(recorder.calls) == 3

    async def test_a_call_that_ended_during_the_gap_is_forgotten(
        self, ami_server: StartServer, follow: Follow, pjsip_trace: list[Frame],
        log_watch: LogWatch,
    ) -> None:
        """Bob's call ends while we are away: not live after the reconnect, so the tracker
        drops it (logged) and the service hears the live set; Alice's still ends."""
        alice = {"1795610072.0", "1795610072.1"}
        live = [f for f in recorded_live_channels(pjsip_trace) if f.get("Uniqueid") in alice]
        server = await ami_server(live_channels=live)
        follower, recorder = await follow(server)
        await server.next_login()
        events = event_frames(pjsip_trace)
        await server.send_events(f for f in events if f.t < 5)
        await recorder.until(lambda: len(recorder.calls) == 1)
        assert follower.tracker.live_uniqueids() == {"1795610072.0", "1795610072.2"}

        server.drop()
        await server.next_login()
        await recorder.until(lambda: len(recorder.reconciled) == 2)
        assert {u for u in recorder.reconciled[1] if "/" not in u} == alice
        assert follower.tracker.live_uniqueids() == {"1795610072.0"}
        assert log_watch.count("ami.call_lost_in_gap uniqueid=1795610072.2") == 1

        await server.send_events(f for f in events if f.t >= 8)  # after Bob's end
        await recorder.until(lambda: len(recorder.calls) == 2)
        assert recorder.uniqueids() == ["1795610072.4", "1795610072.0"]

    async def test_refused_connections_are_retried_until_asterisk_is_back(
        self, ami_server: StartServer, follow: Follow
    ) -> None:
        """Asterisk down at start: the follower keeps trying with backoff, then connects."""
        server = await ami_server()
        await server.refuse()
        follower, recorder = await follow(server)
        await follower.progress.retries.reached(3, timeout=WAIT)
        assert not follower.connected
        assert follower.progress.sessions.count == 0
        await server.accept()
        await server.next_login()
        await recorder.until(lambda: len(recorder.reconciled) == 1)
        assert follower.connected
        assert follower.reconnects == 0

    async def test_an_unanswered_ping_replaces_the_connection(
        self, ami_server: StartServer, follow: Follow, log_watch: LogWatch
    ) -> None:
        """Half-open TCP (nothing answers any more): the Ping times out, a new session starts."""
        server = await ami_server()
        follower, recorder = await follow(server, ping_interval=0.05, ping_timeout=0.3)
        await server.next_login()
        await recorder.until(lambda: len(recorder.reconciled) == 1)
        server.stall()
        await server.next_login()
        await recorder.until(lambda: len(recorder.reconciled) == 2)
        assert follower.reconnects == 1
        assert log_watch.count("no Pong") == 1


class TestFailures:
    async def test_a_refused_login_is_reported_and_retried(
        self, ami_server: StartServer, follow: Follow, log_watch: LogWatch
    ) -> None:
        """Wrong secret: Asterisk says Authentication failed; the follower logs it, counts it
        and is not connected."""
        server = await ami_server()
        follower, recorder = await follow(server, secret="wrong")
        await follower.progress.login_failures.reached(2, timeout=WAIT)
        assert follower.login_failures >= 2
        assert server.login_failures >= 2
        assert not follower.connected
        assert recorder.reconciled == []
        assert "message='Authentication failed'" in next(
            line for line in log_watch.lines if "ami.login_failed" in line)

    async def test_a_failing_service_does_not_stop_the_following(
        self, ami_server: StartServer, follow: Follow, log_watch: LogWatch,
        pjsip_trace: list[Frame],
    ) -> None:
        """on_call_ended raising is logged with the call; the next calls still arrive."""
        server = await ami_server()
        _, recorder = await follow(server)
        recorder.fail_first_call = True
        await server.next_login()
        await server.send_events(event_frames(pjsip_trace))
        await recorder.until(lambda: len(recorder.calls) == 3)
        assert log_watch.count("ami.settle_failed uniqueid=1795610072.4") == 1

    async def test_stop_settles_calls_still_waiting_for_their_cdr(
        self, ami_server: StartServer, follow: Follow, pjsip_trace: list[Frame]
    ) -> None:
        """Cdr events declared but none sent: on stop the hung-up calls come out from events."""
        server = await ami_server()
        follower, recorder = await follow(server, cdr_events="on", cdr_grace_seconds=3600)
        await server.next_login()
        await recorder.until(lambda: len(recorder.reconciled) == 1)
        await server.send_events(without_cdrs(pjsip_trace))
        # A Ping's answer comes after every event sent before it: all are queued by then.
        assert follower._connection is not None
        await follower._connection.ping(WAIT)
        assert recorder.calls == []
        await follower.stop(drain_seconds=WAIT)
        assert sorted(recorder.uniqueids()) == sorted(dialled(PJSIP))
        assert {c.record.evidence for c in recorder.calls} == {"events"}
        assert_truth(recorder, PJSIP)

    async def test_the_grace_period_expires_while_following(
        self, ami_server: StartServer, follow: Follow, pjsip_trace: list[Frame]
    ) -> None:
        """Cdr events declared but none sent: after the grace the calls come out anyway."""
        server = await ami_server()
        _, recorder = await follow(server, cdr_events="on", cdr_grace_seconds=0.05)
        await server.next_login()
        await server.send_events(without_cdrs(pjsip_trace))
        await recorder.until(lambda: len(recorder.calls) == 3)
        assert_truth(recorder, PJSIP)


class TestConnection:
    async def test_login_refused_raises(self, ami_server: StartServer) -> None:
        server = await ami_server()
        with pytest.raises(AmiLoginRefused, match="Authentication failed"):
            async with AmiConnection(server.host, server.port, "coobill", "wrong"):
                pass

    async def test_an_unanswered_action_times_out(self, ami_server: StartServer) -> None:
        server = await ami_server()
        async with AmiConnection(server.host, server.port, "coobill", "lab-secret") as ami:
            server.stall()
            with pytest.raises(AmiTimeout, match="CoreShowChannels"):
                await ami.request({"Action": "CoreShowChannels"}, timeout=0.1)

    async def test_an_action_cut_off_by_a_drop_fails_at_once(
        self, ami_server: StartServer
    ) -> None:
        """panoramisk would leave it pending forever; we raise when the socket closes."""
        server = await ami_server()
        async with AmiConnection(server.host, server.port, "coobill", "lab-secret") as ami:
            server.stall()
            pending = ami.request({"Action": "CoreShowChannels"}, timeout=WAIT * 10)
            server.drop()
            with pytest.raises(AmiConnectionLost):
                await pending

    async def test_unknown_actions_get_asterisks_error(self, ami_server: StartServer) -> None:
        server = await ami_server()
        async with AmiConnection(server.host, server.port, "coobill", "lab-secret") as ami:
            reply: Any = await ami.request({"Action": "NoSuchAction"})
        assert reply.response == "Error"
        assert reply.message.startswith("Invalid/unknown command: NoSuchAction.")

    async def test_zero_live_channels_is_an_empty_set(self, ami_server: StartServer) -> None:
        server = await ami_server()
        async with AmiConnection(server.host, server.port, "coobill", "lab-secret") as ami:
            assert await ami.live_uniqueids() == set()


class _Dispatcher:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    def dispatch(self, message: Any) -> None:
        self.messages.append(message)


def test_utf8_split_across_reads_is_kept() -> None:
    """A name whose 'é' straddles two TCP reads arrives whole (panoramisk alone drops it)."""
    raw = "Event: Hangup\r\nCallerIDName: José\r\nUniqueid: 1.1\r\n\r\n".encode()
    cut = raw.index("é".encode()) + 1
    for protocol_class, name in ((_Protocol, "José"), (AMIProtocol, "Jos")):
        protocol = protocol_class()
        protocol.connection_made(asyncio.Transport())
        protocol.encoding = "utf8"
        protocol.factory = _Dispatcher()
        protocol.data_received(raw[:cut])
        protocol.data_received(raw[cut:])
        assert protocol.factory.messages[0]["CallerIDName"] == name
