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

from collections.abc import Collection
from dataclasses import dataclass, field

from hypothesis import strategies as st

from tests.fakes.ami_server import Frame
from tests.faults.calls import Call

EPOCH = 1_795_700_000.0  # the Timestamp of t=0 (manager.conf timestampevents = yes)
EXTENSIONS = ("100", "101", "102")
RING, ANSWER = 0.5, 1.5  # after the gate request: the Dial starts, the callee answers


@dataclass(frozen=True)
class Placed:
    """One call: the gate is asked at `asked`; it talks `call.billsec` seconds."""

    call: Call
    asked: float

    @property
    def ends(self) -> float:
        return self.asked + ANSWER + self.call.billsec

    def frames(self) -> list[tuple[float, Frame]]:
        """Its AMI events, each at the time Asterisk posts it, stamped as timestampevents
        does."""
        timed: list[tuple[float, Frame]] = []
        for frame in self.call.begin() + self.call.end():
            at = {"DialBegin": self.asked + RING}.get(frame.event, self.asked + ANSWER)
            if frame.event in ("Cdr", "Hangup"):
                at = self.ends
            timed.append((at, Frame(frame.replace(Timestamp=f"{EPOCH + at:.6f}").headers, at)))
        return timed


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

    @property
    def loses_frames(self) -> bool:
        return bool(self.gaps) or self.kill is not None

    def down(self, t: float) -> bool:
        return self.kill is not None and self.kill.covers(t)

    def live(self, t: float, dialled: Collection[int]) -> set[str]:
        """The channels up at `t`: a call the gate allowed (seq in `dialled`), from its gate
        request (the channel exists then) to its Hangup. A call the gate refused, or could not
        answer (the daemon down), hung up at once (Hangup(21))."""
        return {p.call.uniqueid for p in self.calls
                if p.call.seq in dialled and p.asked <= t < p.ends}

    def master_csv(self, t: float, dialled: Collection[int]) -> str:
        """Master.csv at `t`: a row per dialled call that has ended, in the order they ended."""
        return "".join(p.call.master_csv_row() for p in sorted(self.calls, key=lambda p: p.ends)
                       if p.call.seq in dialled and p.ends <= t)

    def delivered(self) -> list[tuple[float, int, Frame]]:
        """The frames that would reach coobill were every call allowed, in the order they
        arrive, each with its call's seq: outside every gap and outside the daemon's
        downtime, Cdrs late or dropped, then duplicated and swapped."""
        timed: list[tuple[float, int, Frame]] = []
        for placed in self.calls:
            for at, frame in placed.frames():
                if frame.event == "Cdr":
                    if placed.call.seq in self.missing_cdrs:
                        continue
                    if placed.call.seq in self.late_cdrs:
                        at += 0.5  # after the Hangups, within cdr_grace_seconds
                timed.append((at, placed.call.seq, frame))
        timed.sort(key=lambda item: item[0])
        timed = [item for item in timed
                 if not any(w.covers(item[0]) for w in self.gaps) and not self.down(item[0])]
        for index in self.duplicated:
            if index < len(timed):
                _, seq, frame = timed[index]
                later = min(len(timed), index + 3)
                timed.insert(later, (timed[later - 1][0], seq, frame))
        for index in self.swapped:
            if index + 1 < len(timed):
                (a_at, a_seq, a), (b_at, b_seq, b) = timed[index], timed[index + 1]
                # Asterisk posts one channel's events in the order they happen; events of
                # different calls, or posted at the same instant (a Cdr and a Hangup), may
                # reach a manager client either way round. But a frame never arrives before
                # Asterisk posted it: the earlier one is held back and both arrive when the
                # later is posted - unless a gap or the kill came in between (the session that
                # would have carried it is gone), then they stay as they are.
                if a_at == b_at:
                    timed[index], timed[index + 1] = (a_at, b_seq, b), (b_at, a_seq, a)
                elif a_seq != b_seq and not self._interrupted(a_at, b_at):
                    timed[index], timed[index + 1] = (b_at, b_seq, b), (b_at, a_seq, a)
        return timed

    def _interrupted(self, after: float, until: float) -> bool:
        """Whether AMI went down or the daemon was killed within (after, until]."""
        windows = self.gaps + ((self.kill,) if self.kill is not None else ())
        return any(after < w.start <= until for w in windows)


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    count = draw(st.integers(1, 4))
    calls = tuple(
        Placed(Call(seq, draw(st.sampled_from(EXTENSIONS)), draw(st.integers(0, 25))),
               asked=draw(st.floats(0, 20).map(lambda t: round(t, 1))))
        for seq in range(count))
    horizon = max(p.ends for p in calls) + 1

    def window() -> Window:
        start = draw(st.floats(0, horizon).map(lambda t: round(t, 2)))
        return Window(start, round(start + draw(st.floats(0.1, 15)), 2))

    gaps = tuple(window() for _ in range(draw(st.integers(0, 2))))
    kill = window() if draw(st.booleans()) else None
    seqs = st.sampled_from(range(count))
    indices = st.lists(st.integers(0, 7 * count), max_size=3).map(tuple)
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
