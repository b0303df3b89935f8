"""Following calls on the AMI event stream: which channel dialled what, under which
authorization, and how long the dialled party talked.

Pure: no sockets, no clock of its own (one is injected), so the same tracker runs live behind
`AmiFollower` and offline over a recorded trace.

What it follows: every channel the gate allowed (`authorized`, in the same queue as the
events, so an authorization is always seen before the Dial it allowed), every channel that
dials (the caller side of a `DialBegin`), and every channel a Cdr says dialled. Each Dial
target is a leg, known by the dialled channel's uniqueid; the leg's Hangup, not the caller's,
ends it, so a call the caller transferred (BlindTransfer, a Redirect, an attended transfer)
lasts as long as the external party stays on, as the lab recording shows
(lab-23.4.1-transfer). A channel is over when it has hung up and so have its answered legs.

Billable seconds of a leg: Asterisk's own CDR billsec (the `Cdr` whose UniqueID is the
channel and whose DestinationChannel is the leg), unless the events (DialEnd ANSWER to the
leg's Hangup, truncated as Asterisk truncates billsec) show the dialled party talked longer -
the CDR ends at a transfer - or, when Asterisk stamped the events (timestampevents = yes),
shorter - the CDR counts from the caller's first answer, a dialplan that answers before Dial
(main/cdr.c:1598-1607). Settlement caps it at the authorization's limit either way. A Dial Cdr with no DialBegin from the channel, while others had one, is
not a Dial of its own (the consultation call of an attended transfer). Times come from the
events' Timestamp (manager.conf timestampevents = yes), else from when the daemon received
them, durations on the monotonic clock.

Completeness: a channel whose life was followed from its authorization to its end on one
AMI session, or whose CDRs came, is known whole: an authorization no Dial went out under is
released. Otherwise its holds are flagged, never released (SettleChannel.leftover), and a
Dial of it whose DialEnd never came is not taken for unanswered: the answer may have been lost.

Ordering: the `Cdr` and the `Hangup` of a channel come from different Asterisk subscribers
and arrive in either order; a busy call posts two Cdrs (Dial, then Hangup). A channel is
settled once it is over and every leg's Cdr has come, or, when Cdr events are expected, after
`cdr_grace_seconds` (at once when they are not).
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from coobill.ami.cdr import CdrRecord, known, parse_callerid, trunk_of_channel
from coobill.services.commands import DialOutcome, Disposition, SettleChannel

__all__ = [
    "CallTracker",
    "CdrMode",
    "ChannelEnded",
    "Received",
    "parse_callerid",
    "trunk_of_channel",
]

log = logging.getLogger("coobill.ami")

CdrMode = Literal["auto", "on", "off"]

_DIAL_STATUS = {
    "ANSWER": Disposition.ANSWERED,
    "BUSY": Disposition.BUSY,
    "NOANSWER": Disposition.NO_ANSWER,
    "CANCEL": Disposition.CANCEL,
    "ABORT": Disposition.CANCEL,
    "CHANUNAVAIL": Disposition.FAILED,
    "CONGESTION": Disposition.FAILED,
    # The call was forwarded elsewhere by the callee: this dial was not answered.
    "CONTINUE": Disposition.NO_ANSWER,
    "GOTO": Disposition.NO_ANSWER,
}


@dataclass(frozen=True, slots=True)
class Received:
    """When an event reached the daemon: the wall clock and the monotonic one."""

    wall: float
    tick: float


@dataclass(frozen=True, slots=True)
class ChannelEnded:
    """A followed channel is over: what to settle."""

    settle: SettleChannel

    @property
    def uniqueid(self) -> str:
        return self.settle.uniqueid

    @property
    def record(self) -> DialOutcome | None:
        """Its first call record (a channel that dialled once: its call)."""
        return self.settle.record


@dataclass(slots=True)
class _Leg:
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

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @property
    def over(self) -> bool:
        return self.ended_at is not None or (bool(self.status) and self.status != "ANSWER")

    @property
    def followed(self) -> bool:
        """Its own Hangup can be told apart (DialBegin named its uniqueid); a leg without one
        ends with the caller."""
        return bool(self.dest_uniqueid)


@dataclass(slots=True)
class _Channel:
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
    legs: dict[str, _Leg] = field(default_factory=dict)
    hung_up_at: float | None = None
    hung_up_tick: float | None = None
    hung_up_rx: float | None = None
    # Its Hangup's ConnectedLineNum: a channel that was connected to a number, though no Dial
    # of it was seen (events dropped), may have dialled.
    connected_to: str = ""
    over_seen: float | None = None  # monotonic: when it was over (the Cdr grace runs from it)
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

    @property
    def over(self) -> bool:
        return self.hung_up_at is not None and None not in self.waiting.values() and all(
            leg.over or not leg.answered or not leg.followed for leg in self.legs.values())

    def cdr_of(self, leg: _Leg) -> CdrRecord | None:
        for cdr in self.cdrs:
            if cdr.destination_channel == leg.dest_channel:
                return cdr
        return None


class _RecentlySettled:
    """The last `size` settled uniqueids, so a late Cdr or a repeated event is not a new call
    (unless its settlement lacked evidence: then a late Dial Cdr is welcome)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._ids: OrderedDict[str, bool] = OrderedDict()

    def add(self, uniqueid: str, complete: bool) -> None:
        self._ids[uniqueid] = complete
        self._ids.move_to_end(uniqueid)
        while len(self._ids) > self._size:
            self._ids.popitem(last=False)

    def __contains__(self, uniqueid: object) -> bool:
        return uniqueid in self._ids

    def complete(self, uniqueid: str) -> bool:
        return self._ids.get(uniqueid, False)


class CallTracker:
    """Turns AMI events into exactly one `ChannelEnded` per followed channel."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] | None = None,
        cdr_events: CdrMode = "auto",
        cdr_grace_seconds: float = 5.0,
        max_channels: int = 10_000,
        remember_settled: int = 10_000,
    ) -> None:
        if cdr_events not in ("auto", "on", "off"):
            raise ValueError(f"cdr_events must be auto, on or off, not {cdr_events!r}")
        self._clock = clock
        # Durations (the Cdr grace, talk time) are measured on a monotonic clock; an injected
        # wall clock (tests, replays) drives both.
        self._monotonic = monotonic or (time.monotonic if clock is time.time else clock)
        self._cdr_mode: CdrMode = cdr_events
        self._cdr_seen = False
        self._cdr_absent = False  # "auto": a grace period ran out and no Cdr was ever seen
        self._grace = cdr_grace_seconds
        self._max_channels = max_channels
        self._channels: dict[str, _Channel] = {}
        self._dest_of: dict[str, tuple[str, str]] = {}  # dialled uniqueid -> (channel, leg)
        # The names of the channels the gate allowed lately (a Local ;2 half among them).
        self._gated_names: OrderedDict[str, None] = OrderedDict()
        # Channel name -> when it hung up, lately; and the names followed for a channel known
        # from its Cdrs alone (see _follow_by_name).
        self._recent_hangups: OrderedDict[str, float] = OrderedDict()
        self._waiting_names: dict[str, str] = {}
        self._settled = _RecentlySettled(remember_settled)
        self._generation = 0
        self._connected = False
        self._handlers: dict[str, Callable[[dict[str, str], Received], list[ChannelEnded]]] = {
            "dialbegin": self._on_dial_begin,
            "dialend": self._on_dial_end,
            "bridgeenter": self._on_bridge_enter,
            "hangup": self._on_hangup,
            "cdr": self._on_cdr,
        }

    # -- what the follower calls ------------------------------------------------------------

    def tick(self) -> float:
        """Now on the tracker's monotonic clock."""
        return self._monotonic()

    def received(self) -> Received:
        """Now, as an event's arrival."""
        return Received(self._clock(), self._monotonic())

    def feed(self, event: Mapping[str, Any], received: Received | None = None) -> list[ChannelEnded]:
        """Take one AMI event (any kind; the irrelevant ones are ignored) and when it came."""
        h = _headers(event)
        handler = self._handlers.get(h.get("event", "").lower())
        if handler is None:
            return []
        return handler(h, received or Received(self._clock(), self._monotonic()))

    def authorized(self, uniqueid: str, token: str, tick: float | None = None,
                   channel: str = "", extension: str = "") -> None:
        """The gate allowed `uniqueid` (its hold is `token`; `channel` its name, `extension`
        who pays): put in the event queue when the hold committed, so before any event of the
        Dial it allows."""
        self._gated(channel)
        ch = self._channel(uniqueid)
        ch.extension = ch.extension or extension
        if ch.hung_up_at is not None:
            return
        first = not ch.authorizations and not ch.legs
        ch.authorizations.append((token, self._monotonic() if tick is None else tick))
        if first:
            ch.life_seen, ch.life_generation = self._connected, self._generation
        else:
            ch.life_seen = ch.life_seen and self._connected \
                and ch.life_generation == self._generation

    def expect(self, uniqueid: str, tokens: list[str]) -> None:
        """A live channel holds funds this tracker did not see allowed (a restart): follow
        it to its end, its life not seen whole."""
        ch = self._channel(uniqueid)
        known_tokens = {t for t, _ in ch.authorizations}
        ch.authorizations.extend((t, None) for t in tokens if t not in known_tokens)

    def paid_by(self, uniqueid: str) -> str | None:
        """The extension paying for the call a channel is the dialled party of, when it asks
        the gate itself: a blind-transferred external leg sent into the outbound context
        dials on for the extension that placed the call (its own caller ID is the number that
        extension dialled)."""
        found = self._dest_of.get(uniqueid)
        if found is None:
            return None
        owner = self._channels.get(found[0])
        return owner.extension or None if owner is not None else None

    def earlier(self, uniqueid: str) -> tuple[tuple[str, int], ...]:
        """For a channel asking the gate again: each earlier authorization of it this tracker
        saw, with the most talk time its Dials can have had - the time since it was allowed,
        since every one of them came after it. One with a Dial still up is left out."""
        ch = self._channels.get(uniqueid)
        if ch is None:
            return ()
        now = self._monotonic()
        found = []
        for token, tick in ch.authorizations:
            if tick is None:
                continue
            if any(not leg.over for leg in ch.legs.values() if leg.authorization == token):
                continue
            bound = math.ceil(max(now - tick, 0.0)) + 1
            ch.bounds[token] = min(bound, ch.bounds.get(token, bound))
            found.append((token, ch.bounds[token]))
        return tuple(found)

    def expire(self, now: float | None = None) -> list[ChannelEnded]:
        """Settle the channels that are over and whose Cdrs have not all come within the
        grace period (`now` on the tracker's monotonic clock)."""
        now = self._monotonic() if now is None else now
        due = [ch for ch in self._channels.values()
               if ch.over_seen is not None and now - ch.over_seen >= self._grace
               and None not in ch.waiting.values()]
        if due and self._cdr_mode == "auto" and not self._cdr_seen and not self._cdr_absent:
            self._cdr_absent = True
            log.warning("ami.no_cdr_events grace=%ss: billing from channel events (load "
                        "cdr_manager, enabled = yes, for Asterisk's own billsec)", self._grace)
        return [self._settle(ch) for ch in due]

    def flush(self) -> list[ChannelEnded]:
        """Settle every channel that is over now, with what is known (shutting down)."""
        return [self._settle(ch) for ch in list(self._channels.values()) if ch.over]

    def begin_session(self) -> None:
        """A new AMI connection starts: what follows may be after a gap."""
        self._generation += 1
        self._connected = False

    def connected(self) -> None:
        """The session is logged in and its live channels listed: from here on, every event
        comes (so a channel allowed from now on can be followed whole)."""
        self._connected = True

    def disconnected(self) -> None:
        self._generation += 1
        self._connected = False

    def reconcile(self, live: AbstractSet[str]) -> list[str]:
        """Forget channels that ended during a gap (neither they nor a leg still up are live,
        their end not seen); returns their uniqueids. Their holds are the ledger's to
        reconcile (Asterisk's CDR store, else flagged)."""
        lost = []
        for uid, ch in self._channels.items():
            if ch.generation >= self._generation or uid in live:
                continue
            if ch.over or any(leg.dest_uniqueid in live for leg in ch.legs.values()):
                continue
            lost.append(uid)
        for uid in lost:
            self._forget(self._channels[uid])
        return lost

    def lost(self, live: AbstractSet[str], asked_tick: float) -> list[ChannelEnded]:
        """While connected, the live channels were listed (asked at `asked_tick`, monotonic):
        a followed channel heard of before that, not over, and neither it nor a leg of it
        listed, ended though its end never came (Asterisk drops events for a client that
        falls behind). Settled with what is known; its holds are not released (flagged,
        unless Asterisk's CDR store knows better)."""
        gone = [
            ch for uid, ch in self._channels.items()
            if not ch.over and ch.seen_tick < asked_tick and uid not in live
            and not any(leg.dest_uniqueid in live for leg in ch.legs.values())
        ]
        return [self._settle(ch, lost=True) for ch in gone]

    def following(self) -> set[str]:
        """The channels being followed (live or waiting for their Cdrs): their settlement is
        on its way, whatever a listing of the live channels says."""
        return set(self._channels)

    def awaiting_cdr(self) -> set[str]:
        """Channels that are over and wait for their Cdrs (or the grace) to be settled."""
        return {uid for uid, ch in self._channels.items() if ch.over}

    def live_uniqueids(self) -> set[str]:
        """Followed channels that have not hung up yet."""
        return {uid for uid, ch in self._channels.items() if ch.hung_up_at is None}

    @property
    def cdr_events_expected(self) -> bool:
        """"auto" expects Cdr events until a call's grace period ran out with none ever seen:
        so with cdr_manager loaded even the first call is billed from its Cdr."""
        if self._cdr_mode != "auto":
            return self._cdr_mode == "on"
        return self._cdr_seen or not self._cdr_absent

    # -- events -----------------------------------------------------------------------------

    def _on_dial_begin(self, h: dict[str, str], at: Received) -> list[ChannelEnded]:
        uid = h.get("uniqueid", "")
        # No caller Uniqueid: an Originate dialling out, not a channel running a Dial. A
        # dialled leg that dials on (the external party, blind-transferred) is no caller of
        # its own - unless the gate allowed it (it went through the outbound context).
        if not uid or uid in self._settled or (uid in self._dest_of and not self._allowed(uid)):
            return []
        ch = self._channel(uid, _stamp(h, at)[0])
        if ch.hung_up_at is not None:
            return []
        ch.caller_number = ch.caller_number or known(h.get("calleridnum", ""))
        ch.caller_name = ch.caller_name or known(h.get("calleridname", ""))
        ch.exten = ch.exten or h.get("exten", "")
        if ch.authorizations:
            self._gated(h.get("channel", ""))
        dest_uid, dest_channel = h.get("destuniqueid", ""), h.get("destchannel", "")
        key = dest_uid or dest_channel
        if key and key not in ch.legs:
            token = ch.authorizations[-1][0] if ch.authorizations else None
            ch.legs[key] = _Leg(dest_uid, dest_channel, token, dialled_at=_stamp(h, at)[0])
            if dest_uid:
                self._dest_of[dest_uid] = (uid, key)
        return []

    def _on_dial_end(self, h: dict[str, str], at: Received) -> list[ChannelEnded]:
        leg = self._leg(h.get("uniqueid", ""), h.get("destuniqueid", "") or h.get("destchannel", ""),
                        h.get("destchannel", ""))
        if leg is None:
            return []
        leg.status = h.get("dialstatus", "").strip().upper()
        if leg.status == "ANSWER" and leg.answered_at is None:
            leg.answered_at, leg.answered_tick = _stamp(h, at)
        return self._if_over(h.get("uniqueid", ""))

    def _on_bridge_enter(self, h: dict[str, str], at: Received) -> list[ChannelEnded]:
        ch = self._channels.get(h.get("uniqueid", ""))
        if ch is None or ch.hung_up_at is not None or not ch.legs:
            return []
        last = next(reversed(ch.legs.values()))
        if not any(leg.answered for leg in ch.legs.values()) and not last.over:
            # No DialEnd ANSWER seen (lost, or a Dial that bridges without one): the bridge
            # is the answer.
            last.answered_at, last.answered_tick = _stamp(h, at)
        return []

    def _on_hangup(self, h: dict[str, str], at: Received) -> list[ChannelEnded]:
        uid = h.get("uniqueid", "")
        ended: list[ChannelEnded] = []
        name = h.get("channel", "")
        if name:
            self._recent_hangups[name] = _stamp(h, at)[0]
            while len(self._recent_hangups) > self._max_channels:
                self._recent_hangups.popitem(last=False)
            owner = self._waiting_names.pop(name, None)
            if owner is not None and owner in self._channels:
                self._channels[owner].waiting[name] = self._recent_hangups[name]
                ended += self._if_over(owner)
        found = self._dest_of.pop(uid, None)
        if found is not None:
            owner, key = found
            leg = self._leg(owner, key)
            if leg is not None and leg.ended_at is None:
                leg.ended_at, leg.ended_tick = _stamp(h, at)
                leg.ended_rx = at.tick
            ended += self._if_over(owner)
        ch = self._channels.get(uid)
        if ch is not None and ch.hung_up_at is None:
            ch.hung_up_at, ch.hung_up_tick = _stamp(h, at)
            ch.hung_up_rx = at.tick
            ch.caller_number = ch.caller_number or known(h.get("calleridnum", ""))
            ch.connected_to = known(h.get("connectedlinenum", ""))
            ended += self._if_over(uid)
        return ended

    def _on_cdr(self, h: dict[str, str], at: Received) -> list[ChannelEnded]:
        if self._cdr_mode == "off":
            return []
        self._cdr_seen = True
        uid = h.get("uniqueid", "")
        if not uid or (uid in self._dest_of and not self._allowed(uid)):
            return []
        try:
            cdr = CdrRecord.from_event(h)
        except ValueError as exc:
            log.warning("ami.cdr_unreadable uniqueid=%s error=%s", uid, exc)
            return []
        ch = self._channels.get(uid)
        if ch is None:
            if not cdr.is_dial or self._settled.complete(uid):
                return []
            # Its DialBegin was missed (before we connected, or in a gap): the Cdr says it.
            ch = self._channel(uid, at.wall)
        if cdr.is_dial and cdr not in ch.cdrs:
            ch.cdrs.append(cdr)
            self._follow_by_name(ch, cdr)
        if cdr.end is not None and (ch.last_cdr_end is None or cdr.end > ch.last_cdr_end):
            ch.last_cdr_end = cdr.end
        ch.cdrs_out = True
        if not ch.legs and ch.hung_up_at is None and ch.over_seen is None:
            # Known from its Cdrs alone: they come together; settle once the grace is over.
            ch.over_seen = self._monotonic()
            return []
        return self._if_over(uid)

    # -- settling ---------------------------------------------------------------------------

    def _if_over(self, uid: str) -> list[ChannelEnded]:
        ch = self._channels.get(uid)
        if ch is None or not ch.over:
            return []
        if ch.over_seen is None:
            ch.over_seen = self._monotonic()
        if not self.cdr_events_expected:
            return [self._settle(ch)]
        if ch.legs:
            waiting = not ch.cdrs_out or any(ch.cdr_of(leg) is None for leg in ch.legs.values())
        else:
            # No Dial seen: whole, it made none (its non-Dial Cdr is enough); not whole, its
            # Cdrs may still be landing (a Hangup can come between two of them): the grace.
            waiting = not (self._seen_whole(ch) and ch.cdrs_out)
        return [] if waiting else [self._settle(ch)]

    def _seen_whole(self, ch: _Channel) -> bool:
        if not ch.legs and ch.connected_to and ch.connected_to != ch.caller_number:
            return False  # no Dial seen, yet connected to a number: its Dial's events dropped
        return ch.life_seen and ch.life_generation == self._generation

    def _settle(self, ch: _Channel, *, lost: bool = False) -> ChannelEnded:
        self._forget(ch)
        whole = not lost and (self._seen_whole(ch) or ch.cdrs_out)
        self._settled.add(ch.uniqueid, whole)
        dials = self._dials(ch)
        caller_name, caller_number = "", ""
        for cdr in ch.cdrs:
            caller_name, caller_number = parse_callerid(cdr.callerid)
            caller_number = cdr.source or caller_number
            break
        note = "" if whole else "its channel ended while AMI was not following it whole"
        settle = SettleChannel(
            uniqueid=ch.uniqueid,
            caller_extension=caller_number or ch.caller_number,
            caller_name=caller_name or ch.caller_name,
            dials=dials, leftover="release" if whole else "flag", note=note,
        )
        return ChannelEnded(settle)

    def _dials(self, ch: _Channel) -> tuple[DialOutcome, ...]:
        if not ch.legs:  # known from its Cdrs alone
            token = ch.authorizations[0][0] if len(ch.authorizations) == 1 else None
            outcomes: list[DialOutcome] = []
            went_on: datetime | None = None  # the end of a Dial whose callee talked on
            for c in sorted(ch.cdrs, key=_started):
                if went_on is not None and c.start is not None and c.start >= went_on:
                    continue  # made while that callee talked on: an attended transfer's
                outcome = self._from_cdr_alone(ch, c, token)
                if outcome.evidence == "events" and c.end is not None:
                    went_on = c.end
                outcomes.append(outcome)
            return tuple(outcomes)
        legs = [leg for leg in ch.legs.values() if not self._into_a_gated_local_channel(ch, leg)]
        seen: list[DialOutcome | None] = [self._outcome(ch, leg) for leg in legs]
        # An authorization one of whose Dials is unknown (None: no evidence of its cost) is
        # not closed by its other, unanswered Dials: their record at cost 0 would settle its
        # hold for nothing. Left out, the hold is flagged.
        unknown = {leg.authorization for leg, o in zip(legs, seen, strict=True) if o is None}
        outcomes = [o for o in seen if o is not None and not (
            o.disposition != Disposition.ANSWERED and o.authorization in unknown)]
        if not self._seen_whole(ch):
            # Dial Cdrs of no DialBegin seen: Dials whose events fell into a gap. (Followed
            # whole, such a Cdr is no Dial of its own: an attended transfer's consultation.)
            matched = {id(ch.cdr_of(leg)) for leg in ch.legs.values()}
            outcomes += [c.outcome() for c in sorted(ch.cdrs, key=_started)
                         if id(c) not in matched]
        return tuple(outcomes)

    def _from_cdr_alone(self, ch: _Channel, cdr: CdrRecord, token: str | None) -> DialOutcome:
        """A Dial known from its Cdr alone. If the channel it reached talked on after the
        caller left (a transfer), its talk is the caller's time answered - from the Dial's
        answer to the caller's last Cdr's end, on the CDRs' clock - and the time the reached
        channel stayed up after the caller's Hangup, on the events' clock."""
        ended = ch.waiting.get(cdr.destination_channel)
        after = ended - ch.hung_up_at if ended is not None and ch.hung_up_at is not None else 0
        if after <= 1 or cdr.answer is None or ch.last_cdr_end is None:
            return cdr.outcome(authorization=token)
        before = (ch.last_cdr_end - cdr.answer).total_seconds()
        talk = max(int(before + after), cdr.billable_seconds)
        bound = ch.bounds.get(token or "")
        return cdr.outcome(authorization=token,
                           billable_seconds=talk if bound is None else min(talk, bound),
                           end=ch.last_cdr_end + timedelta(seconds=after), evidence="events")

    def _into_a_gated_local_channel(self, ch: _Channel, leg: _Leg) -> bool:
        """A Dial of a Local channel whose other half the gate allowed (a phone dialling
        Local/9…@coobill-outbound): that half's own Dial is the call; this one is not."""
        name = leg.dest_channel
        if not ch.authorizations and name.lower().startswith("local/") and name.endswith(";1"):
            return name[:-1] + "2" in self._gated_names
        return False

    def _outcome(self, ch: _Channel, leg: _Leg) -> DialOutcome | None:
        cdr = ch.cdr_of(leg)
        talk = self._talk(ch, leg)
        if leg.answered and talk is None and cdr is None:
            return None  # answered, its end lost: no evidence of what it cost
        if not leg.answered and not leg.status and cdr is None and not self._seen_whole(ch):
            # Its DialEnd never came (Asterisk posts one for every Dial, answered or not) and
            # the channel was not followed whole: the answer fell into a gap or a restart. A
            # Hangup says the Dial ended, not that nobody talked - so no evidence of what it
            # cost, and its hold is flagged rather than settled at nothing.
            return None
        bound = ch.bounds.get(leg.authorization or "")
        if talk is not None and bound is not None:
            talk = min(talk, bound)
        if cdr is not None and not self._events_measure_better(ch, leg, cdr, talk):
            billsec = cdr.billable_seconds if bound is None else min(cdr.billable_seconds, bound)
            return cdr.outcome(authorization=leg.authorization, billable_seconds=billsec)
        end = leg.ended_at if leg.ended_at is not None else ch.hung_up_at
        if talk is not None:
            disposition = Disposition.ANSWERED
        elif cdr is not None:
            disposition = cdr.disposition
        else:
            disposition = _DIAL_STATUS.get(leg.status, Disposition.NO_ANSWER)
        return DialOutcome(
            leg=cdr.destination_channel if cdr is not None else leg.dest_channel,
            dialled_number=cdr.destination if cdr is not None else ch.exten,
            start=cdr.start if cdr is not None else _utc(ch.began),
            answer=_utc(leg.answered_at) if leg.answered_at is not None else None,
            end=_utc(end) if end is not None else None,
            billable_seconds=talk or 0, disposition=disposition,
            trunk=trunk_of_channel(leg.dest_channel) if leg.dest_channel else None,
            authorization=leg.authorization, evidence="events",
        )

    @staticmethod
    def _events_measure_better(ch: _Channel, leg: _Leg, cdr: CdrRecord, talk: int | None) -> bool:
        """Whether the events measure the dialled party's talk where the CDR does not.
        Longer than the CDR by more than a second: the call went on past the caller's CDR (a
        transfer); events that reach us late can only look shorter, never longer. Shorter:
        the CDR counts from the caller's earlier answer (a dialplan that answers before Dial)
        - seen when the CDR's own answer comes sooner after its start than the dialled party
        answered after the Dial began (late events only shorten that ring), or believed when
        Asterisk stamped the events itself (timestampevents = yes)."""
        if talk is None:
            return False
        if talk > cdr.billable_seconds + 1:
            return True
        if talk >= cdr.billable_seconds - 1:
            return False
        if cdr.start is not None and cdr.answer is not None and leg.answered_at is not None \
                and leg.dialled_at is not None:
            cdr_ring = (cdr.answer - cdr.start).total_seconds()
            if cdr_ring < (leg.answered_at - leg.dialled_at) - 1:
                return True
        return leg.answered_tick is None and (
            leg.ended_tick is None if leg.ended_at is not None else ch.hung_up_tick is None)

    @staticmethod
    def _talk(ch: _Channel, leg: _Leg) -> int | None:
        """The dialled party's talk in whole seconds (truncated, as main/cdr.c truncates
        billsec), from its answer to its own hangup (or the caller's); None unanswered."""
        if leg.answered_at is None:
            return None
        end, end_tick = (leg.ended_at, leg.ended_tick) if leg.ended_at is not None \
            else (ch.hung_up_at, ch.hung_up_tick)
        if end is None:
            return None
        seconds = end - leg.answered_at
        if leg.answered_tick is not None and end_tick is not None:
            seconds = end_tick - leg.answered_tick  # both ours: the monotonic clock
        return max(int(seconds), 0)

    # -- small helpers ----------------------------------------------------------------------

    def _channel(self, uid: str, began: float | None = None) -> _Channel:
        ch = self._channels.get(uid)
        if ch is None:
            self._make_room()
            ch = self._channels[uid] = _Channel(
                uid, began if began is not None else self._clock(), self._generation,
                seen_tick=self._monotonic())
        ch.generation = self._generation
        return ch

    def _leg(self, uid: str, key: str, channel: str = "") -> _Leg | None:
        ch = self._channels.get(uid)
        if ch is None:
            return None
        ch.generation = self._generation
        leg = ch.legs.get(key)
        if leg is None and channel:
            leg = next((leg for leg in ch.legs.values() if leg.dest_channel == channel), None)
        return leg

    def _forget(self, ch: _Channel) -> None:
        self._channels.pop(ch.uniqueid, None)
        for name in ch.waiting:
            if self._waiting_names.get(name) == ch.uniqueid:
                del self._waiting_names[name]
        for leg in ch.legs.values():
            if self._dest_of.get(leg.dest_uniqueid, ("",))[0] == ch.uniqueid:
                del self._dest_of[leg.dest_uniqueid]

    def _follow_by_name(self, ch: _Channel, cdr: CdrRecord) -> None:
        """A channel known from its Cdrs alone (its DialBegin missed): the channel an answered
        Dial of it reached may still be up - transferred, it talks on with the target. It is
        followed by name (its uniqueid was in the DialBegin) until it hangs up."""
        dest = cdr.destination_channel
        if ch.legs or cdr.disposition != Disposition.ANSWERED or not dest:
            return
        if dest in self._recent_hangups:
            ch.waiting[dest] = self._recent_hangups[dest]
        elif dest not in ch.waiting:
            ch.waiting[dest] = None
            self._waiting_names[dest] = ch.uniqueid

    def _allowed(self, uid: str) -> bool:
        ch = self._channels.get(uid)
        return ch is not None and bool(ch.authorizations)

    def _gated(self, channel: str) -> None:
        if channel:
            self._gated_names[channel] = None
            while len(self._gated_names) > self._max_channels:
                self._gated_names.popitem(last=False)

    def _make_room(self) -> None:
        # A last guard on memory: reconcile() normally forgets what a gap left behind.
        while len(self._channels) >= self._max_channels:
            ch = next(iter(self._channels.values()))
            log.warning("ami.tracker_full dropped=%s max_channels=%d", ch.uniqueid,
                        self._max_channels)
            self._forget(ch)


def _headers(event: Mapping[str, Any]) -> dict[str, str]:
    """Lower-case header names (Uniqueid vs UniqueID); a repeated header keeps its first value."""
    headers: dict[str, str] = {}
    for key, value in event.items():
        if isinstance(value, list | tuple):
            value = value[0] if value else ""
        headers[str(key).lower()] = "" if value is None else str(value)
    return headers


def _stamp(h: Mapping[str, str], at: Received) -> tuple[float, float | None]:
    """The event's time, and the monotonic instant when that time is when we received it
    (None when Asterisk stamped the event, timestampevents = yes: its clock measures)."""
    stamp = h.get("timestamp", "")
    if stamp:
        try:
            return float(stamp), None
        except ValueError:
            pass
    return at.wall, at.tick


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _started(cdr: CdrRecord) -> datetime:
    return cdr.start.replace(tzinfo=None) if cdr.start else datetime.min
