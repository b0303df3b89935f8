"""The call tracker on hand-made events: ordering, repeats, modes, memory."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
from panoramisk import Message

from coobill.ami import CallTracker, parse_callerid, trunk_of_channel
from coobill.services.commands import Disposition

CALLER = "1700000000.1"
EPOCH = datetime(2026, 11, 22, 14, 0, 0, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self) -> None:
        self.now = EPOCH

    def __call__(self) -> float:
        return self.now


def dial_begin(dest: str = "PJSIP/carrier-a-00000001", uid: str = CALLER) -> dict[str, str]:
    return {"Event": "DialBegin", "Channel": "PJSIP/100-00000000", "Uniqueid": uid,
            "CallerIDNum": "100", "CallerIDName": "Alice", "Exten": "9138000001",
            "DestChannel": dest, "DialString": "x"}


def dial_end(status: str, dest: str = "PJSIP/carrier-a-00000001",
             uid: str = CALLER) -> dict[str, str]:
    return {"Event": "DialEnd", "Uniqueid": uid, "DestChannel": dest, "DialStatus": status}


def hangup(uid: str = CALLER) -> dict[str, str]:
    return {"Event": "Hangup", "Uniqueid": uid, "Channel": "PJSIP/100-00000000", "Cause": "16"}


def cdr(disposition: str = "ANSWERED", billsec: str = "6", *, app: str = "Dial",
        dest: str = "PJSIP/carrier-a-00000001", uid: str = CALLER,
        answer: str = "2026-11-22 14:00:01") -> dict[str, str]:
    return {"Event": "Cdr", "AccountCode": "", "Source": "100", "Destination": "9138000001",
            "DestinationContext": "sipphones", "CallerID": '"Alice" <100>',
            "Channel": "PJSIP/100-00000000", "DestinationChannel": dest,
            "LastApplication": app, "LastData": "PJSIP/138000001@carrier-a,20",
            "StartTime": "2026-11-22 14:00:00",
            "AnswerTime": answer if disposition == "ANSWERED" else "",
            "EndTime": "2026-11-22 14:00:07", "Duration": "7", "BillableSeconds": billsec,
            "Disposition": disposition, "AMAFlags": "DOCUMENTATION", "UniqueID": uid,
            "UserField": ""}


def answered_call(clock: Clock, tracker: CallTracker) -> list[Any]:
    out = tracker.feed(dial_begin())
    clock.now += 1.2
    out += tracker.feed(dial_end("ANSWER"))
    clock.now += 6.5
    return out


class TestTrunkAndCallerId:
    @pytest.mark.parametrize(("channel", "trunk"), [
        ("PJSIP/carrier-a-00000001", "carrier-a"),
        ("PJSIP/my-long-trunk-name-0000abcd", "my-long-trunk-name"),
        ("SIP/provider-000001f3", "provider"),
        ("Local/13800000000@carrier-00000016;1", "carrier"),
        ("Local/100@from-internal-00000002;2", "from-internal"),
        ("", None),
        ("garbage", None),
    ])
    def test_trunk_is_the_endpoint_or_the_local_context(self, channel: str,
                                                        trunk: str | None) -> None:
        """The part between tech/ and the last '-' (endpoint names contain '-')."""
        assert trunk_of_channel(channel) == trunk

    @pytest.mark.parametrize(("value", "parsed"), [
        ('"Alice" <100>', ("Alice", "100")),
        ('"Carol Wu" <102>', ("Carol Wu", "102")),
        ('"" <100>', ("", "100")),
        ("<unknown>", ("", "")),
        ("100", ("", "100")),
        ("Alice", ("Alice", "")),
        ("\uff11\uff10\uff10", ("\uff11\uff10\uff10", "")),  # full-width digits: no number
        ('"Say \\"hi\\"" <7>', ('Say "hi"', "7")),
    ])
    def test_callerid_is_split_into_name_and_number(self, value: str,
                                                    parsed: tuple[str, str]) -> None:
        """`"Name" <num>` as Asterisk merges it; `<unknown>` is empty."""
        assert parse_callerid(value) == parsed


class TestOrdering:
    def test_cdr_before_hangup_ends_the_call_once(self) -> None:
        """The Dial-Cdr first, then the Hangup: one call, from the Cdr."""
        clock = Clock()
        tracker = CallTracker(clock=clock)
        answered_call(clock, tracker)
        assert tracker.feed(cdr()) == []  # the caller's Hangup says the call is over
        [ended] = tracker.feed(hangup())
        assert tracker.feed(hangup()) == []
        assert ended.record is not None
        assert ended.record.evidence == "cdr"
        assert ended.record.billable_seconds == 6
        assert ended.record.trunk == "carrier-a"
        assert ended.settle.caller_name == "Alice"
        assert ended.record.answer == datetime(2026, 11, 22, 14, 0, 1)
        assert ended.record.leg == "PJSIP/carrier-a-00000001"

    def test_hangup_before_cdr_waits_for_the_cdr_once_cdrs_flow(self) -> None:
        """Cdr events seen before: the Hangup holds the call until its Cdr."""
        clock = Clock()
        tracker = CallTracker(clock=clock)
        tracker.feed(cdr(app="Hangup", uid="other", disposition="NO ANSWER"))
        answered_call(clock, tracker)
        assert tracker.feed(hangup()) == []
        assert tracker.live_uniqueids() == set()
        [ended] = tracker.feed(cdr())
        assert ended.record.evidence == "cdr"

    def test_busy_gives_two_cdrs_and_one_call(self) -> None:
        """Dial-Cdr BUSY then Hangup-Cdr NO ANSWER for one UniqueID: one BUSY call."""
        tracker = CallTracker(cdr_events="on")
        tracker.feed(dial_begin(dest="PJSIP/carrier-b-00000005"))
        tracker.feed(dial_end("BUSY", dest="PJSIP/carrier-b-00000005"))
        assert tracker.feed(hangup()) == []
        [ended] = tracker.feed(cdr("BUSY", "0", dest="PJSIP/carrier-b-00000005"))
        assert tracker.feed(cdr("NO ANSWER", "0", app="Hangup", dest="")) == []
        assert ended.record.disposition == Disposition.BUSY
        assert ended.record.trunk == "carrier-b"

    def test_repeated_events_never_end_a_call_twice(self) -> None:
        """Every event delivered twice: still one call."""
        clock = Clock()
        tracker = CallTracker(clock=clock, cdr_events="on")
        out = []
        for event in (dial_begin(), dial_end("ANSWER"), hangup(), cdr(), cdr("NO ANSWER", "0",
                                                                             app="Hangup")):
            out += tracker.feed(event)
            out += tracker.feed(dict(event))
        out += tracker.expire(clock.now + 60)
        assert [c.uniqueid for c in out] == [CALLER]

    def test_auto_mode_waits_for_the_first_calls_cdr(self) -> None:
        """cdr_manager may well be loaded: even the first call waits for its Cdr."""
        clock = Clock()
        tracker = CallTracker(clock=clock)
        answered_call(clock, tracker)
        assert tracker.feed(hangup()) == []
        [ended] = tracker.feed(cdr())
        assert ended.record.evidence == "cdr"

    def test_auto_mode_settles_from_events_once_a_grace_passed_without_any_cdr(self) -> None:
        """No Cdr ever came: after one grace period, events are the truth, and from then on
        a Hangup ends a call at once."""
        clock = Clock()
        tracker = CallTracker(clock=clock, cdr_grace_seconds=5)
        answered_call(clock, tracker)
        assert tracker.feed(hangup()) == []
        [ended] = tracker.expire(clock.now + 5)
        assert ended.record.evidence == "events"
        assert ended.record.billable_seconds == 6  # 6.5 s truncated, as Asterisk does
        assert ended.record is not None
        assert ended.record.answer == datetime(2026, 11, 22, 14, 0, 1, 200000, tzinfo=UTC)
        assert tracker.cdr_events_expected is False
        assert tracker.feed(cdr()) == []  # late: already settled
        assert tracker.cdr_events_expected is True  # a Cdr came after all: trust them again

    def test_auto_mode_keeps_trusting_cdrs_across_a_reconnect(self) -> None:
        """A call that outlived a reconnect still waits for its Cdr."""
        clock = Clock()
        tracker = CallTracker(clock=clock)
        tracker.feed(cdr(app="Hangup", uid="other", disposition="NO ANSWER"))
        answered_call(clock, tracker)
        tracker.begin_session()
        assert tracker.feed(hangup()) == []
        assert [c.record.evidence for c in tracker.feed(cdr())] == ["cdr"]

    def test_off_mode_ignores_cdr_events(self) -> None:
        """cdr_events="off": billsec comes from the events even when a Cdr is there."""
        clock = Clock()
        tracker = CallTracker(clock=clock, cdr_events="off")
        answered_call(clock, tracker)
        assert tracker.feed(cdr(billsec="99")) == []
        [ended] = tracker.feed(hangup())
        assert ended.record.billable_seconds == 6

    def test_on_mode_waits_the_grace_then_uses_events(self) -> None:
        """Declared Cdr events that never come: settled from events after the grace."""
        clock = Clock()
        tracker = CallTracker(clock=clock, cdr_events="on", cdr_grace_seconds=5)
        answered_call(clock, tracker)
        assert tracker.feed(hangup()) == []
        assert tracker.expire(clock.now + 4.9) == []
        [ended] = tracker.expire(clock.now + 5)
        assert ended.record.evidence == "events"
        assert tracker.expire(clock.now + 500) == []

    def test_flush_settles_whatever_waits_for_its_cdr(self) -> None:
        """Shutting down: the waiting calls come out from the events."""
        clock = Clock()
        tracker = CallTracker(clock=clock, cdr_events="on")
        answered_call(clock, tracker)
        tracker.feed(hangup())
        assert [c.record.evidence for c in tracker.flush()] == ["events"]
        assert tracker.flush() == []


class TestWhichChannels:
    def test_an_originate_dialling_out_is_not_a_call(self) -> None:
        """DialBegin without caller fields (Originate) is not followed."""
        tracker = CallTracker()
        event = {k: v for k, v in dial_begin().items() if not k.startswith(("Uniqueid", "Caller"))}
        tracker.feed(event)
        assert tracker.live_uniqueids() == set()

    def test_a_dial_cdr_alone_is_a_call(self) -> None:
        """Its DialBegin missed (before we connected): its Dial-Cdrs settle it, once the
        grace has let every one of them land (a Hangup may come between two)."""
        clock = Clock()
        tracker = CallTracker(clock=clock, cdr_grace_seconds=5)
        assert tracker.feed(cdr()) == []
        assert tracker.feed(hangup()) == []
        # The channel its Dial reached is followed by name until it hangs up (a transfer).
        assert tracker.expire(clock.now + 5) == []
        tracker.feed({"Event": "Hangup", "Channel": "PJSIP/carrier-a-00000001",
                      "Uniqueid": "1700000000.9"})
        [ended] = tracker.expire(clock.now + 5)
        assert ended.record is not None
        assert ended.record.evidence == "cdr"
        assert ended.settle.caller_extension == "100"
        assert ended.record.dialled_number == "9138000001"

    def test_a_failover_dial_waits_for_every_targets_cdr_and_bills_the_answered(self) -> None:
        """Two DialBegins (carrier-b busy, then carrier-a answers): one call, the answered."""
        clock = Clock()
        tracker = CallTracker(clock=clock, cdr_events="on")
        tracker.feed(dial_begin(dest="PJSIP/carrier-b-00000005"))
        tracker.feed(dial_end("BUSY", dest="PJSIP/carrier-b-00000005"))
        tracker.feed(dial_begin(dest="PJSIP/carrier-a-00000006"))
        tracker.feed(dial_end("ANSWER", dest="PJSIP/carrier-a-00000006"))
        clock.now += 42.3
        tracker.feed(hangup())
        assert tracker.feed(cdr("BUSY", "0", dest="PJSIP/carrier-b-00000005")) == []
        [ended] = tracker.feed(cdr("ANSWERED", "42", dest="PJSIP/carrier-a-00000006"))
        assert ended.record.disposition == Disposition.ANSWERED
        assert ended.record.billable_seconds == 42
        assert ended.record.trunk == "carrier-a"

    def test_congestion_is_failed(self) -> None:
        """CONGESTION (Cdr) and CHANUNAVAIL (DialEnd) are both FAILED."""
        clock = Clock()
        alone = CallTracker(clock=clock)
        alone.feed(cdr("CONGESTION", "0"))
        assert alone.expire(clock.now + 5)[0].settle.dials[0].disposition == "FAILED"
        tracker = CallTracker(cdr_events="off")
        tracker.feed(dial_begin())
        tracker.feed(dial_end("CHANUNAVAIL"))
        assert tracker.feed(hangup())[0].record.disposition == "FAILED"

    def test_bridge_enter_counts_as_answer_without_dialend(self) -> None:
        """A lost DialEnd: the caller entering the bridge is the answer."""
        clock = Clock()
        tracker = CallTracker(clock=clock, cdr_events="off")
        tracker.feed(dial_begin())
        clock.now += 2
        tracker.feed({"Event": "BridgeEnter", "Uniqueid": CALLER})
        clock.now += 3
        [ended] = tracker.feed(hangup())
        assert (ended.record.disposition, ended.record.billable_seconds) == ("ANSWERED", 3)

    def test_unknown_caller_name_is_empty(self) -> None:
        tracker = CallTracker(cdr_events="off")
        tracker.feed(dial_begin() | {"CallerIDName": "<unknown>"})
        assert tracker.feed(hangup())[0].settle.caller_name == ""


class TestInputsAndTime:
    def test_panoramisk_messages_and_repeated_headers_are_read(self) -> None:
        """A panoramisk Message (case-insensitive, list for a repeated header) works."""
        tracker = CallTracker(cdr_events="off")
        tracker.feed(Message(dial_begin() | {"ChanVariable": ["A=1", "B=2"]}))
        tracker.feed(Message(dial_end("BUSY") | {"DialStatus": ["BUSY", "BUSY"]}))
        [ended] = tracker.feed(Message(hangup()))
        assert ended.record.disposition == Disposition.BUSY

    def test_timestamp_header_wins_over_the_clock(self) -> None:
        """timestampevents=yes: times are Asterisk's, shown in the PBX's time zone."""
        tracker = CallTracker(clock=lambda: 0.0, cdr_events="off")
        tracker.feed(dial_begin() | {"Timestamp": f"{EPOCH:.6f}"})
        tracker.feed(dial_end("ANSWER") | {"Timestamp": f"{EPOCH + 2.25:.6f}"})
        [ended] = tracker.feed(hangup() | {"Timestamp": f"{EPOCH + 12.0:.6f}"})
        assert ended.record is not None
        # Aware: settlement shows them in the PBX's zone as it is set when it settles.
        assert ended.record.start == datetime(2026, 11, 22, 14, 0, 0, tzinfo=UTC)
        assert ended.record.answer == datetime(2026, 11, 22, 14, 0, 2, 250000, tzinfo=UTC)
        assert ended.record.billable_seconds == 9


class TestMemory:
    def test_channels_are_forgotten_once_settled(self) -> None:
        tracker = CallTracker(cdr_events="off")
        for n in range(100):
            uid = f"1.{n}"
            tracker.feed(dial_begin(uid=uid))
            tracker.feed(hangup(uid=uid))
        assert tracker._channels == {}

    def test_settled_memory_is_bounded(self) -> None:
        tracker = CallTracker(remember_settled=10, cdr_events="off")
        for n in range(50):
            tracker.feed(dial_begin(uid=f"1.{n}"))
            tracker.feed(hangup(uid=f"1.{n}"))
        assert len(tracker._settled._ids) == 10

    def test_too_many_live_channels_drop_the_oldest(self) -> None:
        tracker = CallTracker(max_channels=3)
        for n in range(5):
            tracker.feed(dial_begin(uid=f"1.{n}"))
        assert tracker.live_uniqueids() == {"1.2", "1.3", "1.4"}

    def test_reconcile_forgets_only_what_ended_in_the_gap(self) -> None:
        """Not live, not heard of since the reconnect: forgotten. Live or just seen: kept."""
        tracker = CallTracker()
        for uid in ("1.1", "1.2", "1.3"):
            tracker.feed(dial_begin(uid=uid))
        tracker.begin_session()
        tracker.feed(dial_begin(uid="1.4"))  # new since the reconnect, after the snapshot
        tracker.feed(dial_end("ANSWER", uid="1.3"))  # heard of since the reconnect
        assert tracker.reconcile({"1.1"}) == ["1.2"]
        assert tracker.live_uniqueids() == {"1.1", "1.3", "1.4"}


class TestClocks:
    def test_a_step_of_the_wall_clock_during_a_call_does_not_change_its_talk_time(self) -> None:
        """Events without a Timestamp, no Cdr: the talk time is measured on the monotonic
        clock; the wall clock gives only the times recorded."""
        wall, ticks = Clock(), Clock()
        tracker = CallTracker(clock=wall, monotonic=ticks, cdr_events="off")
        tracker.feed(dial_begin())
        wall.now += 1.2
        ticks.now += 1.2
        tracker.feed(dial_end("ANSWER"))
        wall.now += 3600 + 6.5  # NTP steps the clock an hour forward during the call
        ticks.now += 6.5
        [ended] = tracker.feed(hangup())
        assert ended.record.billable_seconds == 6
        assert ended.record is not None
        assert ended.record.answer == datetime(2026, 11, 22, 14, 0, 1, 200000, tzinfo=UTC)

    def test_the_cdr_grace_runs_on_the_monotonic_clock(self) -> None:
        wall, ticks = Clock(), Clock()
        tracker = CallTracker(clock=wall, monotonic=ticks, cdr_events="on", cdr_grace_seconds=5)
        answered_call(wall, tracker)
        assert tracker.feed(hangup()) == []
        wall.now -= 3600  # stepped back an hour: the grace still ends on time
        ticks.now += 4.9
        assert tracker.expire() == []
        ticks.now += 0.1
        assert [c.record.evidence for c in tracker.expire()] == ["events"]

    def test_asterisks_own_timestamps_measure_the_call_when_it_sends_them(self) -> None:
        """timestampevents=yes: the events carry Asterisk's clock, which measures the call."""
        wall, ticks = Clock(), Clock()
        tracker = CallTracker(clock=wall, monotonic=ticks, cdr_events="off")
        stamped = lambda event, t: {**event, "Timestamp": f"{EPOCH + t:.6f}"}  # noqa: E731
        tracker.feed(stamped(dial_begin(), 0))
        tracker.feed(stamped(dial_end("ANSWER"), 1.2))
        ticks.now += 100  # our clocks say nothing about this call
        [ended] = tracker.feed(stamped(hangup(), 9.0))
        assert ended.record.billable_seconds == 7


def leg_begin(dest_uid: str, dest: str) -> dict[str, str]:
    return dial_begin(dest) | {"DestUniqueid": dest_uid}


def leg_end(status: str, dest_uid: str, dest: str) -> dict[str, str]:
    return dial_end(status, dest) | {"DestUniqueid": dest_uid}


class TestLegsAndAuthorizations:
    def test_each_dial_of_a_channel_is_its_own_record_under_its_own_authorization(self) -> None:
        """Dial(...,g), the gate again, another Dial: two answered legs, each with the token
        of the authorization it went out under."""
        clock = Clock()
        tracker = CallTracker(clock=clock, cdr_events="on")
        tracker.connected()
        tracker.authorized(CALLER, "first")
        tracker.feed(leg_begin("1700000000.2", "PJSIP/carrier-a-00000001"))
        tracker.feed(leg_end("ANSWER", "1700000000.2", "PJSIP/carrier-a-00000001"))
        clock.now += 60.2
        tracker.feed(hangup("1700000000.2"))
        tracker.authorized(CALLER, "second")
        tracker.feed(leg_begin("1700000000.3", "PJSIP/carrier-a-00000002"))
        tracker.feed(leg_end("ANSWER", "1700000000.3", "PJSIP/carrier-a-00000002"))
        clock.now += 30.4
        tracker.feed(hangup("1700000000.3"))
        assert tracker.feed(hangup()) == []  # its Cdrs are to come
        tracker.feed(cdr(billsec="60", dest="PJSIP/carrier-a-00000001"))
        [ended] = tracker.feed(cdr(billsec="30", dest="PJSIP/carrier-a-00000002"))
        assert [(d.authorization, d.billable_seconds, d.leg) for d in ended.settle.dials] == [
            ("first", 60, "PJSIP/carrier-a-00000001"), ("second", 30, "PJSIP/carrier-a-00000002")]
        assert ended.settle.leftover == "release"  # followed whole

    def test_a_transferred_call_lasts_until_the_external_party_hangs_up(self) -> None:
        """The caller transfers and leaves after 4 s of talk; the external party talks on
        with the target: the caller's Cdr says 4, the leg's own Hangup says 9."""
        clock = Clock()
        tracker = CallTracker(clock=clock, cdr_events="on")
        tracker.feed(leg_begin("1700000000.2", "PJSIP/carrier-a-00000001"))
        tracker.feed(leg_end("ANSWER", "1700000000.2", "PJSIP/carrier-a-00000001"))
        stamp = clock.now
        clock.now += 4.3
        assert tracker.feed(hangup()) == []
        assert tracker.feed(cdr(billsec="4")) == []  # the external leg is still up
        # The external leg, transferred, dials the target: not a caller of its own.
        tracker.feed(dial_begin(dest="Local/501@internal-00000002;1", uid="1700000000.2"))
        clock.now = stamp + 9.6
        [ended] = tracker.feed(hangup("1700000000.2"))
        assert ended.record is not None
        assert (ended.record.billable_seconds, ended.record.evidence) == (9, "events")
        assert tracker.live_uniqueids() == set()

    def test_a_cdr_counting_from_an_announcement_gives_way_to_asterisks_stamped_events(
        self,
    ) -> None:
        """The dialplan answered the caller for an announcement before Dial: the CDR counts
        from that answer (628 s); Asterisk's stamped events measure the dialled party (600 s)."""
        tracker = CallTracker(cdr_events="on")
        stamped = lambda event, t: {**event, "Timestamp": f"{EPOCH + t:.6f}"}  # noqa: E731
        tracker.feed(stamped(leg_begin("1700000000.2", "PJSIP/carrier-a-00000001"), 20))
        tracker.feed(stamped(leg_end("ANSWER", "1700000000.2", "PJSIP/carrier-a-00000001"), 28))
        tracker.feed(stamped(hangup("1700000000.2"), 628.4))
        tracker.feed(stamped(hangup(), 628.5))
        [ended] = tracker.feed(cdr(billsec="628"))
        assert ended.record is not None
        assert ended.record.billable_seconds == 600

    def test_events_that_arrive_late_in_a_burst_never_shorten_a_cdr(self) -> None:
        """Without Asterisk's stamps a burst of late events looks like a short call: the Cdr
        stands (settlement still caps it at the limit)."""
        tracker = CallTracker(clock=Clock(), cdr_events="on")
        tracker.feed(leg_begin("1700000000.2", "PJSIP/carrier-a-00000001"))
        tracker.feed(leg_end("ANSWER", "1700000000.2", "PJSIP/carrier-a-00000001"))
        tracker.feed(hangup("1700000000.2"))
        tracker.feed(hangup())
        [ended] = tracker.feed(cdr(billsec="628"))
        assert ended.record is not None
        assert ended.record.billable_seconds == 628

    def test_a_channel_allowed_and_gone_without_a_dial_is_released_when_seen_whole(
        self,
    ) -> None:
        tracker = CallTracker(cdr_events="on")
        tracker.connected()
        tracker.authorized(CALLER, "t1")
        assert tracker.feed(hangup()) == []  # its Cdr will say there was no Dial
        [ended] = tracker.feed(cdr("NO ANSWER", "0", app="Playback", dest=""))
        assert (ended.settle.dials, ended.settle.leftover) == ((), "release")

    def test_a_channel_allowed_before_a_gap_is_never_released_as_never_dialled(self) -> None:
        tracker = CallTracker(cdr_events="off")
        tracker.connected()
        tracker.authorized(CALLER, "t1")
        tracker.disconnected()  # DialBegin, DialEnd: lost
        tracker.begin_session()
        tracker.connected()
        [ended] = tracker.feed(hangup())
        assert (ended.settle.dials, ended.settle.leftover) == ((), "flag")

    def test_a_cdr_again_after_its_channel_was_lost_in_a_gap_is_no_news(self) -> None:
        """A gated channel posts its Cdrs, a leg it reached talks on, and its end falls into
        a gap: forgotten at the reconnect (its hold is the ledger's to flag). One of the Cdrs
        it had, again (a duplicated frame), is no late evidence of a Dial; a Cdr it had not
        seen still is."""
        clock = Clock()
        tracker = CallTracker(clock=clock, cdr_events="on", cdr_grace_seconds=1.0)
        tracker.connected()
        tracker.authorized(CALLER, "t1")
        tracker.feed(leg_begin("1.9", "PJSIP/carrier-a-00000001"))
        tracker.feed(leg_end("ANSWER", "1.9", "PJSIP/carrier-a-00000001"))
        assert tracker.feed(cdr("ANSWERED", "2")) == []
        tracker.feed(hangup())
        tracker.disconnected()  # the leg's Hangup: lost
        tracker.begin_session()
        assert tracker.reconcile(set()) == [CALLER]
        tracker.connected()
        assert tracker.feed(cdr("ANSWERED", "2")) == []
        clock.now += 5
        assert tracker.expire() == []
        tracker.feed(cdr("BUSY", "0", dest="PJSIP/carrier-b-00000002"))
        clock.now += 5
        [ended] = tracker.expire()
        assert [d.leg for d in ended.settle.dials] == ["PJSIP/carrier-b-00000002"]

    def test_a_dial_whose_dialend_fell_into_a_gap_is_not_taken_for_unanswered(self) -> None:
        """DialBegin seen, then a gap (its DialEnd ANSWER lost), then the Hangups and no Cdr:
        nothing says nobody talked - no record at cost 0, its hold is flagged (issue 13)."""
        tracker = CallTracker(cdr_events="off")
        tracker.connected()
        tracker.authorized(CALLER, "t1")
        tracker.feed(leg_begin("1700000000.2", "PJSIP/carrier-a-00000001"))
        tracker.disconnected()  # DialEnd ANSWER, BridgeEnter: lost
        tracker.begin_session()
        tracker.connected()
        assert tracker.feed(hangup("1700000000.2")) == []
        [ended] = tracker.feed(hangup())
        assert (ended.settle.dials, ended.settle.leftover) == ((), "flag")

    def test_an_unanswered_dial_does_not_close_a_hold_another_dial_of_it_may_have_used(
        self,
    ) -> None:
        """Dial(A&B): A did not answer, then a gap took B's DialEnd. A's record at cost 0
        would settle the hold for nothing: left out, the hold is flagged."""
        tracker = CallTracker(cdr_events="off")
        tracker.connected()
        tracker.authorized(CALLER, "t1")
        tracker.feed(leg_begin("1700000000.2", "PJSIP/carrier-a-00000001"))
        tracker.feed(leg_begin("1700000000.3", "PJSIP/carrier-b-00000002"))
        tracker.feed(leg_end("NOANSWER", "1700000000.2", "PJSIP/carrier-a-00000001"))
        tracker.disconnected()  # B's DialEnd ANSWER: lost
        tracker.begin_session()
        tracker.connected()
        tracker.feed(hangup("1700000000.3"))
        [ended] = tracker.feed(hangup())
        assert (ended.settle.dials, ended.settle.leftover) == ((), "flag")

    def test_a_dial_followed_whole_without_a_dialend_is_still_unanswered(self) -> None:
        """The same events, no gap: the channel was followed whole (as before issue 13)."""
        tracker = CallTracker(cdr_events="off")
        tracker.connected()
        tracker.authorized(CALLER, "t1")
        tracker.feed(leg_begin("1700000000.2", "PJSIP/carrier-a-00000001"))
        tracker.feed(hangup("1700000000.2"))
        [ended] = tracker.feed(hangup())
        assert ended.record is not None
        assert (ended.record.disposition, ended.settle.leftover) == (Disposition.NO_ANSWER,
                                                                     "release")

    def test_earlier_authorizations_are_bounded_by_the_time_since_them(self) -> None:
        ticks = Clock()
        tracker = CallTracker(clock=ticks, monotonic=ticks)
        tracker.authorized(CALLER, "t1")
        ticks.now += 62.5
        assert tracker.earlier(CALLER) == (("t1", 64),)
        tracker.feed(leg_begin("1700000000.2", "PJSIP/carrier-a-00000001"))
        assert tracker.earlier(CALLER) == ()  # its Dial rings: nothing of it is lowered


def leg_hangup(stamped: float, uid: str = "1.9",
               name: str = "PJSIP/carrier-a-00000001") -> dict[str, str]:
    return {"Event": "Hangup", "Uniqueid": uid, "Channel": name, "Cause": "16",
            "Timestamp": f"{stamped:.6f}"}


class TestACallerGoneAtAReconnect:
    """The PBX lists a gated channel's leg but not the channel itself after an AMI gap: the
    caller's end is assumed (CallTracker.reconcile). Found by an adversarial review: the time
    the leg stayed up after it was taken from two clocks - the leg's Hangup stamped by
    Asterisk, the assumed end the daemon's - so a PBX clock ahead was billed as talk."""

    # answered 14:00:01, the caller's Cdr ends 14:01:01: billsec 60
    CDR: ClassVar[dict[str, str]] = cdr("ANSWERED", "60") | {
        "EndTime": "2026-11-22 14:01:01", "Duration": "61"}

    @staticmethod
    def left_out_at_a_reconnect(clock: Clock, at: float, began: dict[str, str],
                                answered: dict[str, str] | None) -> CallTracker:
        """A gated channel dialled the leg 1.9 (and, with `answered`, its DialEnd ANSWER
        came); AMI dropped; at `at` the reconnect's listing has the leg but not the channel."""
        t = CallTracker(clock=clock, cdr_events="on", cdr_grace_seconds=1.0)
        t.connected()
        t.authorized(CALLER, "t1")
        t.feed(dial_begin() | {"DestUniqueid": "1.9"} | began)
        if answered is not None:
            t.feed(dial_end("ANSWER") | {"DestUniqueid": "1.9"} | answered)
        t.disconnected()
        t.begin_session()
        clock.now = at
        assert t.reconcile({"1.9"}) == []
        t.connected()
        return t

    def test_a_pbx_clock_ahead_is_not_billed_as_talk(self) -> None:
        clock, skew = Clock(), 30.0  # timestampevents = yes, the PBX 30 s ahead
        # its DialEnd ANSWER (14:00:01) lost in the gap; the caller hung up at 14:01:01
        t = self.left_out_at_a_reconnect(
            clock, EPOCH + 61.0, {"Timestamp": f"{EPOCH + skew:.6f}"}, None)
        clock.now += 0.05
        out = t.feed(leg_hangup(EPOCH + 61.05 + skew))
        out += t.feed(self.CDR)
        clock.now += 2
        out += t.expire()
        [ended] = out
        assert [d.billable_seconds for d in ended.settle.dials] == [60]

    def test_a_caller_hangup_in_flight_at_the_listing_is_no_transfer(self) -> None:
        clock = Clock()
        t = self.left_out_at_a_reconnect(clock, EPOCH + 61.01, {"Timestamp": f"{EPOCH:.6f}"},
                                         {"Timestamp": f"{EPOCH + 0.99:.6f}"})
        out = t.feed(hangup() | {"Timestamp": f"{EPOCH + 61.0:.6f}"})  # came after the listing
        clock.now += 0.02
        out += t.feed(leg_hangup(EPOCH + 61.02))
        out += t.feed(self.CDR)
        clock.now += 2
        out += t.expire()
        [ended] = out
        assert [d.billable_seconds for d in ended.settle.dials] == [60]

    def test_a_channel_left_out_of_a_listing_that_dials_again_is_up_after_all(self) -> None:
        """Found by a review: its end assumed at the reconnect, the channel asked the gate
        again (Dial(...,g)) and dialled a second number; it was settled while that Dial
        talked (the second hold released as unused) and the second Dial's evidence refused."""
        clock = Clock()
        t = self.left_out_at_a_reconnect(clock, EPOCH + 30, {}, {})
        clock.now += 5
        out = t.feed(leg_hangup(clock.now))
        out += t.feed(cdr("ANSWERED", "34") | {"EndTime": "2026-11-22 14:00:35",
                                               "Duration": "35"})
        second = "PJSIP/carrier-a-00000002"
        t.authorized(CALLER, "t2")
        out += t.feed(dial_begin(second) | {"DestUniqueid": "1.10"})
        out += t.feed(dial_end("ANSWER", second) | {"DestUniqueid": "1.10"})
        clock.now += 2
        out += t.expire()
        assert out == []  # the second Dial talks on
        clock.now += 60
        out += t.feed(leg_hangup(clock.now, "1.10", second))
        out += t.feed(hangup())
        out += t.feed(cdr("ANSWERED", "62", dest=second) | {  # answered 14:00:35
            "StartTime": "2026-11-22 14:00:35", "AnswerTime": "2026-11-22 14:00:35",
            "EndTime": "2026-11-22 14:01:37", "Duration": "62"})
        clock.now += 2
        out += t.expire()
        [ended] = out
        assert sorted((d.authorization, d.billable_seconds) for d in ended.settle.dials) == [
            ("t1", 34), ("t2", 62)]
