"""Both lab captures, every frame, through the pure tracker: the CDR truth comes out.

Tolerance in events mode (no cdr_manager): billable seconds within +-1 s of Asterisk's
billsec, answer/end within 1 s of the CDR's whole-second times - our timestamps are when an
event was stamped or read, the CDR's are Asterisk's own. Dispositions are the same, except that
a caller hanging up while it rings is CANCEL (DialEnd CANCEL) where the CDR says NO ANSWER.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from coobill.ami import CallTracker, ChannelEnded
from coobill.ami.calls import CdrMode
from coobill.services.commands import Disposition
from tests.ami.conftest import capture_start, dialled, expected
from tests.fakes.ami_server import BASIC, PJSIP, Frame, event_frames, read_trace

LABS = {"basic": BASIC, "pjsip": PJSIP}
TOLERANCE_SECONDS = 1


class ReplayClock:
    def __init__(self, start: float) -> None:
        self.start = start
        self.now = start

    def __call__(self) -> float:
        return self.now


def replay(frames: Iterable[Frame], start: float, *, cdr_events: CdrMode = "auto",
           with_timestamps: bool = False) -> tuple[list[ChannelEnded], CallTracker]:
    """Feed frames in the given order; the clock reads each frame's own capture time."""
    clock = ReplayClock(start)
    tracker = CallTracker(clock=clock, cdr_events=cdr_events)
    ended: list[ChannelEnded] = []
    for f in frames:
        clock.now = start + f.t
        event: dict[str, Any] = f.as_event()
        if with_timestamps:
            event["Timestamp"] = f"{start + f.t:.6f}"
        ended += tracker.feed(event)
    ended += tracker.expire(clock.now + 3600)
    return ended, tracker


def lab_events(lab: Path, *, cdr: bool = True) -> tuple[list[Frame], float]:
    frames = read_trace(lab / "ami-all.txt")
    events = event_frames(frames)
    if not cdr:
        events = [f for f in events if f.event != "Cdr"]
    return events, capture_start(frames)


def outcome(calls: Iterable[ChannelEnded]) -> set[tuple[str, int, str]]:
    return {(c.uniqueid, r.billable_seconds, str(r.disposition)) for c in calls
            for r in c.settle.records()}


def naive(when: datetime | None) -> datetime | None:
    """A time as the labs' CDRs give it (their Asterisk ran on UTC)."""
    return when.astimezone(UTC).replace(tzinfo=None) if when and when.tzinfo else when


def cdr_time(text: str | None) -> datetime | None:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S") if text else None


@pytest.mark.parametrize("lab_name", LABS)
@pytest.mark.parametrize("cdr_events", ["auto", "on"])
class TestReplayWithCdr:
    def test_every_dialled_call_ends_once_with_the_cdr_truth(
        self, lab_name: str, cdr_events: CdrMode
    ) -> None:
        """Each dialled scenario gives exactly one ChannelEnded with the CDR's billsec,
        disposition, times and trunk."""
        lab = LABS[lab_name]
        events, start = lab_events(lab)
        ended, tracker = replay(events, start, cdr_events=cdr_events)

        by_uid = defaultdict(list)
        for call in ended:
            by_uid[call.uniqueid].append(call)
        for uid, truth in dialled(lab).items():
            assert len(by_uid[uid]) == 1, uid
            settle = by_uid[uid][0].record
            assert settle is not None
            assert settle.billable_seconds == truth["billsec"], uid
            assert settle.disposition == Disposition(truth["disposition"]), uid
            assert settle.trunk == truth.get("trunk", "carrier"), uid
            assert by_uid[uid][0].settle.caller_extension == truth["caller"]
            assert settle.dialled_number == truth["number"]
            if settle.evidence == "cdr":
                assert naive(settle.answer) == cdr_time(truth["answer"])
                assert naive(settle.end) == cdr_time(truth["end"])
        assert len(ended) == len(by_uid), "a channel ended twice"
        assert tracker.live_uniqueids() == set()

    def test_denied_calls_never_end_as_billable(self, lab_name: str, cdr_events: CdrMode) -> None:
        """A denied call has no Dial: nothing, or nothing answered, comes out for it."""
        lab = LABS[lab_name]
        events, start = lab_events(lab)
        ended, _ = replay(events, start, cdr_events=cdr_events)
        denied = {s["uniqueid"] for s in expected(lab).values() if not s["dialled"]}
        assert denied
        for call in ended:
            if call.uniqueid in denied:
                assert all(r.disposition != Disposition.ANSWERED and r.billable_seconds == 0
                           for r in call.settle.records())


@pytest.mark.parametrize("lab_name", LABS)
def test_cdr_mode_on_takes_every_truth_from_the_cdr(lab_name: str) -> None:
    """With Cdr events declared, every gated call's evidence is its Dial-Cdr."""
    lab = LABS[lab_name]
    events, start = lab_events(lab)
    ended, _ = replay(events, start, cdr_events="on")
    gated = dialled(lab)
    assert {c.uniqueid: c.record.evidence for c in ended if c.uniqueid in gated and c.record} == \
        dict.fromkeys(gated, "cdr")


@pytest.mark.parametrize("lab_name", LABS)
@pytest.mark.parametrize("with_timestamps", [False, True], ids=["clock", "Timestamp"])
def test_without_cdr_manager_events_give_billsec_within_a_second(
    lab_name: str, with_timestamps: bool
) -> None:
    """All Cdr events removed: billsec from DialEnd ANSWER to Hangup, +-1 s; same dispositions
    (CANCEL for a caller who gave up while it rang)."""
    lab = LABS[lab_name]
    events, start = lab_events(lab, cdr=False)
    ended, _ = replay(events, start, with_timestamps=with_timestamps)

    by_uid = {c.uniqueid: c for c in ended}
    assert len(by_uid) == len(ended)
    for uid, truth in dialled(lab).items():
        settle = by_uid[uid].record
        assert settle is not None
        assert settle.evidence == "events"
        assert abs(settle.billable_seconds - truth["billsec"]) <= TOLERANCE_SECONDS, uid
        allowed = {truth["disposition"]}
        if truth["disposition"] == "NO ANSWER":
            allowed.add("CANCEL")
        assert settle.disposition in allowed, uid
        assert settle.trunk == truth.get("trunk", "carrier")
        for ours, theirs in ((settle.answer, truth["answer"]), (settle.end, truth["end"])):
            if theirs is None:
                assert ours is None
            else:
                assert ours is not None
                truth_time = cdr_time(theirs)
                assert truth_time is not None
                assert abs(naive(ours) - truth_time) <= timedelta(seconds=TOLERANCE_SECONDS)


def test_caller_cancelling_is_cancel_in_events_mode() -> None:
    """The documented difference: DialEnd says CANCEL, the CDR says NO ANSWER."""
    events, start = lab_events(BASIC, cdr=False)
    ended, _ = replay(events, start)
    cancelled = expected(BASIC)["caller_cancels"]["uniqueid"]
    call = next(c for c in ended if c.uniqueid == cancelled)
    assert call.record is not None
    assert call.record.disposition == "CANCEL"


def test_cdr_mode_on_without_cdrs_settles_from_events_after_the_grace() -> None:
    """Cdr events declared but none comes: a hung-up call waits for expire() past the grace."""
    events, start = lab_events(PJSIP, cdr=False)
    clock = ReplayClock(start)
    tracker = CallTracker(clock=clock, cdr_events="on", cdr_grace_seconds=5)
    hung_up: dict[str, float] = {}
    came_out: dict[str, float] = {}
    for f in events:
        clock.now = start + f.t
        if f.event == "Hangup":
            hung_up.setdefault(f.get("Uniqueid"), clock.now)
        assert tracker.feed(f.as_event()) == []
        for call in tracker.expire():
            came_out[call.uniqueid] = clock.now
    clock.now += 10
    for call in tracker.expire():
        assert call.record is not None
        assert call.record.evidence == "events"
        came_out[call.uniqueid] = clock.now
    assert set(came_out) == set(dialled(PJSIP))
    for uid, when in came_out.items():
        assert when - hung_up[uid] >= 5


# -- the same truth whatever the interleaving ----------------------------------------------


def calls_of(events: list[Frame]) -> list[list[Frame]]:
    """The trace cut into its calls (by Linkedid; a Cdr by its UniqueID's Linkedid)."""
    linked: dict[str, str] = {}
    for f in events:
        if f.get("Uniqueid") and f.get("Linkedid"):
            linked[f.get("Uniqueid")] = f.get("Linkedid")
    groups: dict[str, list[Frame]] = defaultdict(list)
    for f in events:
        uid = f.get("Uniqueid") or f.get("UniqueID")
        key = f.get("Linkedid") or linked.get(uid, "")
        if key:
            groups[key].append(f)
    return list(groups.values())


def dialling_hangup_moved(call: list[Frame], rnd: random.Random) -> list[Frame]:
    """The dialling channel's Hangup moved anywhere after its last dial event (before or after
    its Cdrs): the two come from different Asterisk subscribers."""
    callers = {f.get("Uniqueid") for f in call if f.event == "DialBegin" and f.get("Uniqueid")}
    call = list(call)
    for uid in callers:
        hangup = next((i for i, f in enumerate(call)
                       if f.event == "Hangup" and f.get("Uniqueid") == uid), None)
        if hangup is None:
            continue
        frame = call.pop(hangup)
        last_dial = max(i for i, f in enumerate(call)
                        if f.get("Uniqueid") == uid and f.event in ("DialBegin", "DialEnd",
                                                                    "BridgeEnter"))
        call.insert(rnd.randint(last_dial + 1, len(call)), frame)
    return call


def delivered(calls: list[list[Frame]], rnd: random.Random, duplicates: int) -> list[Frame]:
    """The calls interleaved at random (each call's own order kept, save its Hangup), then
    `duplicates` random events delivered again somewhat later."""
    calls = [dialling_hangup_moved(c, rnd) for c in calls]
    labels = [i for i, call in enumerate(calls) for _ in call]
    rnd.shuffle(labels)
    cursors = [iter(call) for call in calls]
    stream = [next(cursors[i]) for i in labels]
    for _ in range(duplicates):
        i = rnd.randrange(len(stream))
        stream.insert(rnd.randint(i + 1, min(i + 40, len(stream))), stream[i])
    return stream


@pytest.mark.parametrize(("lab_name", "cdr"), [("basic", True), ("basic", False),
                                               ("pjsip", True), ("pjsip", False)])
# No shrinking: a shrunk Random is no easier to read, and shrinking a 700-event replay is slow.
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(rnd=st.randoms(use_true_random=False), duplicates=st.integers(0, 30))
def test_interleaving_and_duplicates_do_not_change_the_calls(
    lab_name: str, cdr: bool, rnd: random.Random, duplicates: int
) -> None:
    """Shuffled independent calls, a moved Hangup, repeated events: the same ended calls,
    each once."""
    lab = LABS[lab_name]
    events, start = lab_events(lab, cdr=cdr)
    mode: CdrMode = "on" if cdr else "off"
    # Timestamps travel with the events, so a delayed duplicate keeps its own time.
    reference, _ = replay(events, start, cdr_events=mode, with_timestamps=True)
    shuffled, tracker = replay(delivered(calls_of(events), rnd, duplicates), start,
                               cdr_events=mode, with_timestamps=True)
    assert len(shuffled) == len({c.uniqueid for c in shuffled})
    assert outcome(shuffled) == outcome(reference)
    assert tracker.live_uniqueids() == set()
