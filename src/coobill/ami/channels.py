"""What the call tracker knows of one channel while it follows it: the channel, each target
of its Dials (a leg), and the channels settled lately. Plain state; ami/calls.py changes it,
ami/dials.py reads it to price the Dials.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

from coobill.ami.cdr import CdrRecord
from coobill.services.commands import Disposition

__all__ = ["Channel", "Leg", "RecentlySettled"]


@dataclass(slots=True)
class Leg:
    """One target of one Dial: the dialled channel."""

    dest_uniqueid: str
    dest_channel: str
    authorization: str | None
    dialled_at: float | None = None  # its DialBegin's time
    status: str = ""  # the DialEnd DialStatus, "" while it rings
    answered_at: float | None = None
    answered_tick: float | None = None
    ended_at: float | None = None
    ended_tick: float | None = None
    ended_rx: float | None = None  # monotonic: when its Hangup reached us (stamped or not)
    bridge: str = ""  # the bridge it entered last

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @property
    def over(self) -> bool:
        return self.ended_at is not None or (bool(self.status) and self.status != "ANSWER")

    @property
    def may_talk(self) -> bool:
        """It may still be talking: answered, or its DialEnd never came (Asterisk posts one
        for every Dial: it was lost, and the answer with it), and it has not hung up."""
        return self.followed and not self.over and (self.answered or not self.status)

    @property
    def followed(self) -> bool:
        """Its own Hangup can be told apart (DialBegin named its uniqueid); a leg without one
        ends with the caller."""
        return bool(self.dest_uniqueid)


@dataclass(slots=True)
class Channel:
    uniqueid: str
    began: float
    generation: int
    caller_number: str = ""
    caller_name: str = ""
    exten: str = ""
    extension: str = ""  # who its authorizations are paid by
    # The gate's authorizations of this channel, in order: (token, the monotonic instant).
    authorizations: list[tuple[str, float | None]] = field(default_factory=list)
    life_seen: bool = False  # authorized while connected...
    life_generation: int = -1  # ...on this session
    legs: dict[str, Leg] = field(default_factory=dict)
    hung_up_at: float | None = None
    hung_up_tick: float | None = None
    hung_up_rx: float | None = None
    # Its Hangup was never seen: hung_up_at is when the PBX said it was gone (expect()).
    end_assumed: bool = False
    # Its Hangup's ConnectedLineNum: a channel that was connected to a number, though no Dial
    # of it was seen (events dropped), may have dialled.
    connected_to: str = ""
    over_seen: float | None = None  # monotonic: when it was over (the Cdr grace runs from it)
    bridge: str = ""  # the bridge it entered last
    seen_tick: float = 0.0  # monotonic: when it was first heard of
    cdrs: list[CdrRecord] = field(default_factory=list)
    cdrs_out: bool = False  # one of its Cdrs came: Asterisk posts them together, at its end
    last_cdr_end: datetime | None = None  # the latest EndTime of its Cdrs (any application)
    # Authorization token -> the most talk its Dials may be charged: what the gate was told
    # when the channel asked again (the earlier hold was lowered to that much).
    bounds: dict[str, int] = field(default_factory=dict)
    # Known from its Cdrs alone: the channels its answered Dials reached that had not hung up
    # when their Cdr came (a transferred call talks on) -> when they did (event time).
    waiting: dict[str, float | None] = field(default_factory=dict)
    # ... and when each of those Hangups reached us (monotonic).
    waiting_rx: dict[str, float] = field(default_factory=dict)
    # Cdrs of other channels naming one it waits on, come after its own: the rows an attended
    # transfer's Local ;1 half posts for the external party it was bridged to (how long that
    # party talked on after the caller left, when the caller's Hangup was lost).
    beyond: list[CdrRecord] = field(default_factory=list)

    @property
    def over(self) -> bool:
        return self.hung_up_at is not None and None not in self.waiting.values() and not any(
            leg.may_talk for leg in self.legs.values())

    def cdr_of(self, leg: Leg) -> CdrRecord | None:
        for cdr in self.cdrs:
            if cdr.destination_channel == leg.dest_channel:
                return cdr
        return None


class RecentlySettled:
    """The last `size` settled uniqueids, so a late Cdr or a repeated event is not a new call
    (unless its settlement lacked evidence: then a late Dial Cdr is welcome)."""

    def __init__(self, size: int) -> None:
        self._size = size
        # uniqueid -> complete; and those settled on unanswered Dials' Cdrs alone, for which
        # an answered Dial's Cdr is still welcome
        self._ids: OrderedDict[str, bool] = OrderedDict()
        self._answered_welcome: set[str] = set()
        # The Cdrs each had when it was settled or forgotten: one of them again is a repeat
        # (a duplicated frame), not the news a late Cdr is.
        self._cdrs: dict[str, tuple[CdrRecord, ...]] = {}

    def add(self, uniqueid: str, complete: bool, *, answered_welcome: bool = False,
            cdrs: tuple[CdrRecord, ...] = ()) -> None:
        self._ids[uniqueid] = complete
        if answered_welcome:
            self._answered_welcome.add(uniqueid)
        else:
            self._answered_welcome.discard(uniqueid)
        if cdrs:
            self._cdrs[uniqueid] = cdrs
        else:
            self._cdrs.pop(uniqueid, None)
        self._ids.move_to_end(uniqueid)
        while len(self._ids) > self._size:
            gone = self._ids.popitem(last=False)[0]
            self._answered_welcome.discard(gone)
            self._cdrs.pop(gone, None)

    def __contains__(self, uniqueid: object) -> bool:
        return uniqueid in self._ids

    def complete(self, uniqueid: str) -> bool:
        return self._ids.get(uniqueid, False)

    def welcomes(self, uniqueid: str, cdr: CdrRecord) -> bool:
        """Whether a Dial Cdr of a channel no longer followed is news: its settlement lacked
        evidence, or had only unanswered Dials' and this one was answered - and it is not
        one of the Cdrs the channel had already."""
        if cdr in self._cdrs.get(uniqueid, ()):
            return False
        if not self.complete(uniqueid):
            return True
        return uniqueid in self._answered_welcome and cdr.disposition == Disposition.ANSWERED
