"""A PBX's day, perturbed: the model behind the settlement property test.

A plan is a handful of answered calls (the recorded pjsip call, renumbered: tests/faults/calls)
on a timeline of their own, and what goes wrong on the way to coobill: AMI gaps (the frames
inside are never delivered; the session ends and a new one lists the live channels), a kill -9
of the daemon with a restart later (nothing it held in memory survives; a call placed while it
is down meets a closed gate and never dials), frames duplicated and reordered, Cdr events late
or missing, and a billing user charging flagged holds by hand (with what the PBX shows) while
settlement goes on.

What the PBX knows is decided by time, not by what reached coobill: a channel is live from its
gate request to its Hangup; cdr_csv writes a call's Master.csv row as it ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from hypothesis import strategies as st

from tests.fakes.ami_server import Frame
from tests.faults.calls import Call
from tests.properties.shapes import (
    ANSWER,
    FIRST,
    RING,
    SHAPES,
    Party,
    Script,
    When,
    script_of,
)

EPOCH = 1_795_700_000.0  # the Timestamp of t=0 (manager.conf timestampevents = yes)
EXTENSIONS = ("100", "101", "102")
LIVE_CHECK = 8  # ami.live_check_seconds: the live channels are listed at each multiple
Allowed = Mapping[str, set[int]]  # a channel's uniqueid -> the indices of its authorizations


@dataclass(frozen=True)
class Placed:
    """One gated channel: the gate is asked at `asked`; its first Dial talks `call.billsec`
    seconds; `shape` says what else it does (tests/properties/shapes.py), `more` how long."""

    call: Call
    asked: float
    shape: str = "single"
    more: int = 0

    @property
    def ends(self) -> float:
        return self.script.ends

    @cached_property
    def script(self) -> Script:
        if self.shape == "single":
            return self._recorded()
        return script_of(self.shape, epoch=EPOCH, seq=self.call.seq,
                         extension=self.call.extension, number=self.call.number,
                         gated=Party(self.call.uniqueid, self.call.channel),
                         external=Party(*self._external), asked=self.asked,
                         talk=self.call.billsec, more=self.more)

    @property
    def _external(self) -> tuple[str, str]:
        seq = self.call.seq
        return f"1795700000.{2 * seq + 1}", f"PJSIP/carrier-a-{2 * seq + 1:08x}"

    def _recorded(self) -> Script:
        """The recorded call's AMI events, each at the time Asterisk posts it, stamped as
        timestampevents does."""
        ends = self.asked + ANSWER + self.call.billsec
        script = Script(asks=[self.asked], talk=[self.call.billsec])
        for frame in self.call.begin() + self.call.end():
            at = {"DialBegin": self.asked + RING}.get(frame.event, self.asked + ANSWER)
            if frame.event in ("Cdr", "Hangup"):
                at = ends
            script.frames.append(
                (at, FIRST, Frame(frame.replace(Timestamp=f"{EPOCH + at:.6f}").headers, at)))
        uid, name = self._external
        script.live += [(self.call.uniqueid, self.asked, ends, FIRST),
                        (self.call.channel, self.asked, ends, FIRST),
                        (uid, self.asked + RING, ends, FIRST),
                        (name, self.asked + RING, ends, FIRST)]
        script.rows.append((ends, FIRST, self.call.master_csv_row()))
        return script


@dataclass(frozen=True)
class Window:
    """[start, end): AMI down (a gap) or the daemon down (killed at start, back at end)."""

    start: float
    end: float

    def covers(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True)
class Plan:
    calls: tuple[Placed, ...]
    gaps: tuple[Window, ...] = ()
    kill: Window | None = None
    duplicated: tuple[int, ...] = ()  # indices into the delivered frames, copied later on
    swapped: tuple[int, ...] = ()  # i: delivered frames i and i+1 may trade places
    late_cdrs: frozenset[int] = frozenset()  # call seqs whose Cdr comes after the Hangups
    missing_cdrs: frozenset[int] = frozenset()  # call seqs whose Cdr never comes
    manual_at: tuple[float, ...] = ()  # when the billing user resolves the flagged holds
    released: frozenset[int] = frozenset()  # call seqs whose flagged hold the user releases
    # cdr_csv configured (Master.csv readable): the evidence for calls that ended unseen.
    # Without it such a call's hold is flagged, for a billing user to resolve.
    cdr_store: bool = True
    balances: dict[str, str] = field(default_factory=dict)

    @cached_property
    def calls_by_uid(self) -> dict[str, Placed]:
        return {p.call.uniqueid: p for p in self.calls}

    @property
    def loses_frames(self) -> bool:
        return bool(self.gaps) or self.kill is not None

    def down(self, t: float) -> bool:
        return self.kill is not None and self.kill.covers(t)

    def live(self, t: float, allowed: Allowed) -> set[str]:
        """The channels up at `t` (uniqueids and names, as CoreShowChannels lists them): a
        gated channel from its gate request to its Hangup, its Dials' targets while they are
        up. A channel the gate refused, or could not answer (the daemon down), hangs up then
        (Hangup(21))."""
        return {party for p in self.calls for party, start, end, when in p.script.live
                if when.holds(allowed.get(p.call.uniqueid, set())) and start <= t < end}

    def master_csv(self, t: float, allowed: Allowed) -> str:
        """Master.csv at `t`: cdr_csv's rows of the calls' channels that have ended, in the
        order they were written."""
        return "".join(line for _, line in self.master_csv_rows(t, allowed))

    def master_csv_rows(self, t: float, allowed: Allowed, *,
                        before: bool = False) -> list[tuple[float, str]]:
        """The rows written by `t` (`before`: strictly before it), each with when."""
        return sorted((at, line) for p in self.calls for at, when, line in p.script.rows
                      if when.holds(allowed.get(p.call.uniqueid, set()))
                      and (at < t if before else at <= t))

    def delivered(self) -> list[tuple[float, int, When, Frame]]:
        """The frames that would reach coobill, in the order they arrive, each with its call's
        seq and on what verdicts it is sent: outside every gap and outside the daemon's
        downtime, Cdrs late or dropped, then duplicated and swapped."""
        timed: list[tuple[float, int, When, Frame]] = []
        for placed in self.calls:
            for at, when, frame in placed.script.frames:
                if frame.event == "Cdr":
                    if placed.call.seq in self.missing_cdrs:
                        continue
                    if placed.call.seq in self.late_cdrs:
                        at += 0.5  # after the Hangups, within cdr_grace_seconds
                timed.append((at, placed.call.seq, when, frame))
        timed.sort(key=lambda item: item[0])
        timed = [item for item in timed
                 if not any(w.covers(item[0]) for w in self.gaps) and not self.down(item[0])]
        for index in self.duplicated:
            if index < len(timed):
                at, seq, when, frame = timed[index]
                later = min(len(timed), index + 3)
                again = timed[later - 1][0]
                # A repeat comes on the session its frame came on: a daemon killed in between
                # is gone with that session (the one after it is new, and Asterisk repeats
                # nothing on it). A gap in between is kept: the same process heard both.
                if self.kill is None or not at < self.kill.start <= again:
                    timed.insert(later, (again, seq, when, frame))
        for index in self.swapped:
            if index + 1 < len(timed):
                (a_at, a_seq, a_when, a), (b_at, b_seq, b_when, b) = timed[index:index + 2]
                # Asterisk posts one channel's events in the order they happen; events of
                # different calls, or posted at the same instant (a Cdr and a Hangup), may
                # reach a manager client either way round. But a frame never arrives before
                # Asterisk posted it: the earlier one is held back and both arrive when the
                # later is posted - unless a gap or the kill came in between (the session that
                # would have carried it is gone), then they stay as they are.
                if a_at == b_at:
                    timed[index], timed[index + 1] = ((a_at, b_seq, b_when, b),
                                                      (b_at, a_seq, a_when, a))
                elif a_seq != b_seq and not self._interrupted(a_at, b_at):
                    timed[index], timed[index + 1] = ((b_at, b_seq, b_when, b),
                                                      (b_at, a_seq, a_when, a))
        return timed

    def _interrupted(self, after: float, until: float) -> bool:
        """Whether AMI went down, the daemon was killed, or the live channels were listed
        within (after, until]: a listing's answer comes on the same stream after every event
        posted before it, so no frame is held back past one."""
        windows = self.gaps + ((self.kill,) if self.kill is not None else ())
        checks = range(LIVE_CHECK, int(until) + 1, LIVE_CHECK)
        return any(after < w.start <= until for w in windows) or any(
            after < t <= until for t in checks)


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    count = draw(st.integers(1, 4))
    calls = tuple(
        Placed(Call(seq, draw(st.sampled_from(EXTENSIONS)), draw(st.integers(0, 25))),
               asked=draw(st.floats(0, 20).map(lambda t: round(t, 1))),
               shape=(shape := draw(st.sampled_from(SHAPES))),
               # An attended transfer whose external party hangs up the very instant it is
               # completed leaves a consultation Cdr coobill cannot tell from a Dial of its
               # own once the answer was missed: the external party talks on a second or more.
               more=draw(st.integers(1 if shape == "attended" else 0, 15)))
        for seq in range(count))
    horizon = max(p.ends for p in calls) + 1

    def window() -> Window:
        start = draw(st.floats(0, horizon).map(lambda t: round(t, 2)))
        return Window(start, round(start + draw(st.floats(0.1, 15)), 2))

    gaps = tuple(window() for _ in range(draw(st.integers(0, 2))))
    kill = window() if draw(st.booleans()) else None
    seqs = st.sampled_from(range(count))
    indices = st.lists(st.integers(0, 12 * count), max_size=3).map(tuple)
    return Plan(
        calls=calls, gaps=gaps, kill=kill,
        duplicated=draw(indices), swapped=draw(indices),
        late_cdrs=frozenset(draw(st.lists(seqs, max_size=2))),
        missing_cdrs=frozenset(draw(st.lists(seqs, max_size=2))),
        manual_at=tuple(draw(st.lists(st.floats(0, horizon).map(lambda t: round(t, 1)),
                                      max_size=2))),
        cdr_store=draw(st.booleans()),
        released=frozenset(draw(st.lists(seqs, max_size=2))),
        # Some extensions can pay for less than a call talks: its limit then caps the charge.
        balances={ext: draw(st.sampled_from(["0.05", "0.15", "0.40", "5"])) for ext in EXTENSIONS},
    )
