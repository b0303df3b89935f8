"""The shapes a gated channel's call takes in the settlement property test, as a PBX shows
them: its gate requests, its AMI frames, its live channels and its Master.csv rows, each at the
time Asterisk makes it, and what each authorization's Dials talked (the truth the check holds
coobill to).

- single: the recorded pjsip call (tests/faults/calls.py), one Dial answered.
- failover: one authorization, a first Dial BUSY, a second ANSWERED (item 3 of issue 13).
- sequential: `Dial(…,g)` returns, the dialplan asks the gate again and dials a second number
  (item 2); refused, the channel hangs up (the sample dialplan's Hangup(21)).
- blind: the caller blind-transfers the external leg to an internal phone: the leg dials the
  target itself (its own Dial, its own Cdr and Master.csv row when it hangs up) and talks on.
- attended: the caller consults an internal phone (Asterisk's Local pair; the gated channel's
  second Dial Cdr is the consultation) and completes the transfer by hanging up; the Local ;1
  half is bridged with the external leg and talks on (its own Cdr names the leg).

The transfers are lab-23.4.1-transfer's shapes (its expected.json: the whole time the external
leg is answered is one call of the extension that placed it; the target pays nothing). Events
carry Asterisk's Timestamp (timestampevents = yes); the Cdr and Master.csv times are the same
instants in the PBX's zone (UTC here), whole seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from tests.fakes.ami_server import Frame

SHAPES = ("single", "failover", "sequential", "blind", "attended")
RING, ANSWER = 0.5, 1.5  # after the gate request: the Dial starts, the callee answers
NEXT_ASK = 0.2  # after the first Dial of a sequential channel ends: the gate is asked again


@dataclass(frozen=True)
class When:
    """A condition on the gate's verdicts for one channel: `needs` the authorization of that
    index allowed (-1: none needed), and, with `unless`, that one refused (or never answered)."""

    needs: int = 0
    unless: int | None = None

    def holds(self, allowed: set[int]) -> bool:
        return (self.needs < 0 or self.needs in allowed) and (
            self.unless is None or self.unless not in allowed)


@dataclass
class Script:
    """Everything one gated channel does, each item with when it happens and on what."""

    asks: list[float] = field(default_factory=list)  # when authorization i is asked
    frames: list[tuple[float, When, Frame]] = field(default_factory=list)
    live: list[tuple[str, float, float, When]] = field(default_factory=list)  # id or name
    rows: list[tuple[float, When, str]] = field(default_factory=list)  # Master.csv lines
    talk: list[int] = field(default_factory=list)  # authorization i's Dials' talk, seconds

    @property
    def ends(self) -> float:
        return max(end for _, _, end, _ in self.live)


@dataclass(frozen=True)
class Party:
    uniqueid: str
    channel: str


def _stamp(epoch: float, at: float) -> str:
    return f"{epoch + at:.6f}"


def cdr_time(epoch: float, at: float | None) -> str:
    if at is None:
        return ""
    # Every time of a Dial lies a whole number of seconds from its answer: floored alike.
    return datetime.fromtimestamp(int(round(epoch + at, 3)), UTC).strftime("%Y-%m-%d %H:%M:%S")


class Builder:
    """Frames and rows of one channel, on the plan's clock (`epoch` + seconds)."""

    def __init__(self, epoch: float, gated: Party, extension: str, number: str) -> None:
        self.epoch, self.gated, self.extension, self.number = epoch, gated, extension, number
        self.script = Script()

    def frame(self, at: float, when: When, **headers: str) -> None:
        headers["Timestamp"] = _stamp(self.epoch, at)
        self.script.frames.append((at, when, Frame(tuple(headers.items()), at)))

    def dial(self, at: float, when: When, caller: Party, dest: Party, exten: str) -> None:
        self.frame(at, when, Event="DialBegin", Channel=caller.channel, Uniqueid=caller.uniqueid,
                   Linkedid=self.gated.uniqueid, CallerIDNum=self.extension, CallerIDName="Alice",
                   Exten=exten, DestChannel=dest.channel, DestUniqueid=dest.uniqueid,
                   DestLinkedid=self.gated.uniqueid, DialString=dest.channel)

    def dial_end(self, at: float, when: When, caller: Party, dest: Party, status: str) -> None:
        self.frame(at, when, Event="DialEnd", Channel=caller.channel, Uniqueid=caller.uniqueid,
                   DestChannel=dest.channel, DestUniqueid=dest.uniqueid, DialStatus=status)

    def bridge(self, at: float, when: When, bridge: str, *parties: Party) -> None:
        for party in parties:
            self.frame(at, when, Event="BridgeEnter", Channel=party.channel,
                       Uniqueid=party.uniqueid, BridgeUniqueid=bridge)

    def hangup(self, at: float, when: When, party: Party) -> None:
        self.frame(at, when, Event="Hangup", Channel=party.channel, Uniqueid=party.uniqueid,
                   Linkedid=self.gated.uniqueid, CallerIDNum=self.extension,
                   ConnectedLineNum=self.number, Cause="16", **{"Cause-txt": "Normal Clearing"})

    def cdr(self, at: float, when: When, caller: Party, dest: Party, *, app: str, start: float,
            answer: float | None, end: float, destination: str, source: str) -> None:
        """A Cdr event posted at `at` and its Master.csv row written then (cdr_csv)."""
        billsec = round(end - answer) if answer is not None else 0
        disposition = "ANSWERED" if answer is not None else "BUSY"
        times = [cdr_time(self.epoch, t) for t in (start, answer, end)]
        self.frame(at, when, Event="Cdr", AccountCode="", Source=source,
                   Destination=destination, DestinationContext="sipphones",
                   CallerID=f'"Alice" <{source}>', Channel=caller.channel,
                   DestinationChannel=dest.channel, LastApplication=app,
                   LastData=dest.channel, StartTime=times[0], AnswerTime=times[1],
                   EndTime=times[2], Duration=str(round(end - start)),
                   BillableSeconds=str(billsec), Disposition=disposition,
                   AMAFlags="DOCUMENTATION", UniqueID=caller.uniqueid, UserField="")
        self.script.rows.append((at, when, (
            f'"","{source}","{destination}","sipphones","""Alice"" <{source}>",'
            f'"{caller.channel}","{dest.channel}","{app}","{dest.channel}","{times[0]}",'
            f'"{times[1]}","{times[2]}",{round(end - start)},{billsec},"{disposition}",'
            f'"DOCUMENTATION","{caller.uniqueid}"\n')))

    def up(self, party: Party, start: float, end: float, when: When) -> None:
        self.script.live += [(party.uniqueid, start, end, when), (party.channel, start, end, when)]


FIRST = When(0)


def script_of(shape: str, *, epoch: float, seq: int, extension: str, number: str,
              gated: Party, external: Party, asked: float, talk: int, more: int) -> Script:
    """The script of one channel of this shape, asked at `asked`: its first Dial talks `talk`
    seconds, `more` is the second Dial's talk (failover, sequential) or the talk after the
    transfer (blind, attended)."""
    b = Builder(epoch, gated, extension, number)
    b.script.asks.append(asked)

    def party(k: int, name: str) -> Party:
        return Party(f"1795700001.{10 * seq + k}", name.format(f"{0x1000 + 10 * seq + k:08x}"))

    dialled, answered = asked + RING, asked + ANSWER
    target = party(3, "PJSIP/201-{}")
    if shape == "failover":
        second = party(1, "PJSIP/carrier-b-{}")
        b.dial(dialled, FIRST, gated, external, number)
        b.dial_end(dialled + 0.3, FIRST, gated, external, "BUSY")
        b.hangup(dialled + 0.3, FIRST, external)
        b.dial(answered, FIRST, gated, second, number)
        up = answered + 1.0
        b.dial_end(up, FIRST, gated, second, "ANSWER")
        b.bridge(up, FIRST, f"b{seq}", second, gated)
        end = up + more
        b.cdr(end, FIRST, gated, external, app="Dial", start=dialled, answer=None,
              end=dialled + 0.3, destination=number, source=extension)
        b.cdr(end, FIRST, gated, second, app="Dial", start=answered, answer=up, end=end,
              destination=number, source=extension)
        b.hangup(end, FIRST, second)
        b.hangup(end, FIRST, gated)
        b.up(gated, asked, end, FIRST)
        b.up(external, dialled, dialled + 0.3, FIRST)
        b.up(second, answered, end, FIRST)
        b.script.talk.append(more)
        return b.script
    b.dial(dialled, FIRST, gated, external, number)
    b.dial_end(answered, FIRST, gated, external, "ANSWER")
    b.bridge(answered, FIRST, f"b{seq}", external, gated)
    hung = answered + talk  # when the first Dial's callee, or the caller, leaves it
    if shape == "sequential":
        second = party(1, "PJSIP/carrier-a-{}")
        again = hung + NEXT_ASK
        b.script.asks.append(again)
        b.hangup(hung, FIRST, external)
        first_cdr = {"app": "Dial", "start": dialled, "answer": answered, "end": hung,
                     "destination": number, "source": extension}
        refused = When(0, unless=1)
        b.cdr(again, refused, gated, external, **first_cdr)  # type: ignore[arg-type]
        b.hangup(again, refused, gated)
        both = When(1)
        up, end = again + ANSWER, again + ANSWER + more
        b.dial(again + RING, both, gated, second, number)
        b.dial_end(up, both, gated, second, "ANSWER")
        b.bridge(up, both, f"c{seq}", second, gated)
        b.hangup(end, both, second)
        b.cdr(end, both, gated, external, **first_cdr)  # type: ignore[arg-type]
        b.cdr(end, both, gated, second, app="Dial", start=again + RING, answer=up, end=end,
              destination=number, source=extension)
        b.hangup(end, both, gated)
        b.up(gated, asked, again, FIRST)
        b.up(gated, again, end, both)
        b.up(external, dialled, hung, FIRST)
        b.up(second, again + RING, end, both)
        b.script.talk += [talk, more]
        return b.script
    if shape == "blind":
        end = hung + more
        b.dial(hung, FIRST, external, target, "201")
        b.cdr(hung, FIRST, gated, external, app="Dial", start=dialled, answer=answered, end=hung,
              destination=number, source=extension)
        b.hangup(hung, FIRST, gated)
        b.dial_end(hung, FIRST, external, target, "ANSWER")
        b.bridge(hung, FIRST, f"t{seq}", target, external)
        b.hangup(end, FIRST, target)
        b.cdr(end, FIRST, external, target, app="Dial", start=hung, answer=hung, end=end,
              destination="201", source=number[1:])
        b.hangup(end, FIRST, external)
        b.up(gated, asked, hung, FIRST)
        b.up(external, dialled, end, FIRST)
        b.up(target, hung, end, FIRST)
        b.script.talk.append(talk + more)
        return b.script
    if shape == "attended":
        local1 = party(1, "Local/201@xfer-internal-{};1")
        local2 = party(2, "Local/201@xfer-internal-{};2")
        consulted = hung + 1.0  # the target answers; the caller completes the transfer:
        done, end = consulted + 1.0, consulted + 1.0 + more
        b.dial(hung, FIRST, local2, target, "201")
        b.bridge(hung, FIRST, f"x{seq}", local1, gated)
        b.dial_end(consulted, FIRST, local2, target, "ANSWER")
        b.bridge(consulted, FIRST, f"y{seq}", target, local2)
        b.bridge(done, FIRST, f"b{seq}", local1)
        b.cdr(done, FIRST, gated, external, app="Dial", start=dialled, answer=answered, end=hung,
              destination=number, source=extension)
        b.cdr(done, FIRST, gated, local1, app="Dial", start=hung, answer=hung, end=done,
              destination=number, source=extension)
        b.hangup(done, FIRST, gated)
        for gone in (target, local2):
            b.hangup(end, FIRST, gone)
        b.cdr(end, FIRST, local2, target, app="Dial", start=hung, answer=consulted, end=end,
              destination="201", source=extension)
        b.cdr(end, FIRST, local1, external, app="", start=done, answer=done, end=end,
              destination="201", source=extension)
        b.hangup(end, FIRST, local1)
        b.hangup(end, FIRST, external)
        b.up(gated, asked, done, FIRST)
        b.up(external, dialled, end, FIRST)
        for party_up in (local1, local2, target):
            b.up(party_up, hung, end, FIRST)
        b.script.talk.append(round(end - answered))
        return b.script
    raise ValueError(shape)
