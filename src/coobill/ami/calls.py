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
(main/cdr.c:1598-1607). Settlement caps it at the authorization's limit either way. A Dial
Cdr with no DialBegin from the channel, while others had one, is
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

Length: past ~350 lines because it is one state machine - its event handlers and the
follower's calls share the same indexes (channels, dialled uniqueids, names) and must change
them together; the state it keeps (ami/channels.py) and the pricing of Dials (ami/dials.py)
are apart.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, Literal

from coobill.ami.cdr import CdrRecord, known, parse_callerid, trunk_of_channel
from coobill.ami.channels import Channel, Leg, RecentlySettled
from coobill.ami.dials import dials_of_channel
from coobill.ami.events import Received, headers, stamp
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


@dataclass(frozen=True, slots=True)
class ChannelEnded:
    """A followed channel is over: what to settle."""

    settle: SettleChannel
    # It was handed back to be followed until the legs its answered Dials reached hung up
    # (expect() with legs), and the Cdr grace has passed since: the rows those legs' ends
    # wrote are in Asterisk's CDR store by now.
    legs_awaited: bool = False

    @property
    def uniqueid(self) -> str:
        return self.settle.uniqueid

    @property
    def record(self) -> DialOutcome | None:
        """Its first call record (a channel that dialled once: its call)."""
        return self.settle.record


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
        self._channels: dict[str, Channel] = {}
        self._dest_of: dict[str, tuple[str, str]] = {}  # dialled uniqueid -> (channel, leg)
        # The names of the channels the gate allowed lately (a Local ;2 half among them).
        self._gated_names: OrderedDict[str, None] = OrderedDict()
        # Channel name -> when it hung up (the event's time) and when that reached us (the
        # monotonic clock), lately; and the names followed for a channel known from its Cdrs
        # alone (see _follow_by_name).
        self._recent_hangups: OrderedDict[str, tuple[float, float]] = OrderedDict()
        # -> its uniqueid, until it is settled: whose Hangup ends its wait, whose Cdrs later
        # name them (Channel.beyond).
        self._reached_by: dict[str, str] = {}
        # The name of a channel a followed channel's DialBegin reached -> that channel's
        # uniqueid, until it is settled: whose Cdrs, after a transfer, name the leg it
        # talked on with (Channel.beyond).
        self._dialled_by: dict[str, str] = {}
        self._settled = RecentlySettled(remember_settled)
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

    def feed(self, event: Mapping[str, Any],
             received: Received | None = None) -> list[ChannelEnded]:
        """Take one AMI event (any kind; the irrelevant ones are ignored) and when it came."""
        h = headers(event)
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
        _alive_after_all(ch)
        if ch.hung_up_at is not None:
            return
        first = not ch.authorizations and not ch.legs
        ch.authorizations.append((token, self._monotonic() if tick is None else tick))
        if first:
            ch.life_seen, ch.life_generation = self._connected, self._generation
        else:
            ch.life_seen = ch.life_seen and self._connected \
                and ch.life_generation == self._generation

    def expect(self, uniqueid: str, tokens: list[str], legs: Collection[str] = (), *,
               gone: bool = False) -> None:
        """A live channel holds funds this tracker did not see allowed (a restart): follow
        it to its end, its life not seen whole. With `legs`, the channel is gone already but
        the legs so named, which an answered Dial of it reached, are up (it transferred
        them): it ends when they hang up. `gone`: the PBX no longer lists those legs either,
        but one may have hung up a moment ago, and the CDR rows its end writes reach
        Master.csv after the channel has left the PBX's list: it is over now, and is settled
        (from the file) once the Cdr grace has passed."""
        if uniqueid in self._settled and uniqueid not in self._channels and not legs:
            return  # settled by this tracker (its holds not closed yet when they were read)
        ch = self._channel(uniqueid)
        known_tokens = {t for t, _ in ch.authorizations}
        ch.authorizations.extend((t, None) for t in tokens if t not in known_tokens)
        if legs and ch.hung_up_at is None and not ch.legs:
            ch.hung_up_at, ch.end_assumed = self._clock(), True
            ch.hung_up_rx = self._monotonic()
            for name in legs:
                self._wait_for(ch, name)
                if gone and ch.waiting[name] is None:
                    # its Hangup unseen: gone by now
                    ch.waiting[name], ch.waiting_rx[name] = ch.hung_up_at, ch.hung_up_rx
        if ch.end_assumed and ch.over and ch.over_seen is None:
            # Its legs hung up before this was handled (or are gone): no event will end it,
            # the grace runs from now.
            ch.over_seen = self._monotonic()

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
            if ch.over:
                continue
            if self._leg_up(ch, live):
                if ch.hung_up_at is None and ch.legs:
                    # Gone while a leg it dialled is up: it transferred that leg, its Hangup
                    # lost in the gap. Over when the leg hangs up, and settled a Cdr grace
                    # later - so the rows of how long the leg talked on come first.
                    ch.hung_up_at, ch.end_assumed = self._clock(), True
                    ch.hung_up_rx = self._monotonic()
                continue
            lost.append(uid)
        for uid in lost:
            ch = self._channels[uid]
            self._forget(ch)
            # Its holds are flagged (or settled from Master.csv): a late Cdr of it is still
            # welcome, but one it had already (a duplicated frame) is no news.
            self._settled.add(uid, False, cdrs=tuple(ch.cdrs))
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
            and not self._leg_up(ch, live)
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
        ch = self._channel(uid, stamp(h, at)[0])
        _alive_after_all(ch)
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
            ch.legs[key] = Leg(dest_uid, dest_channel, token, dialled_at=stamp(h, at)[0])
            if dest_uid:
                self._dest_of[dest_uid] = (uid, key)
            if dest_channel:
                self._dialled_by[dest_channel] = uid
        return []

    def _on_dial_end(self, h: dict[str, str], at: Received) -> list[ChannelEnded]:
        leg = self._leg(h.get("uniqueid", ""),
                        h.get("destuniqueid", "") or h.get("destchannel", ""),
                        h.get("destchannel", ""))
        if leg is None:
            return []
        leg.status = h.get("dialstatus", "").strip().upper()
        if leg.status == "ANSWER" and leg.answered_at is None:
            leg.answered_at, leg.answered_tick = stamp(h, at)
        return self._if_over(h.get("uniqueid", ""))

    def _on_bridge_enter(self, h: dict[str, str], at: Received) -> list[ChannelEnded]:
        """No DialEnd ANSWER seen (lost, or a Dial that bridges without one): the caller and
        its Dial's leg entering one bridge is the answer - not a bridge the caller shares
        with others only (an attended transfer's consultation: its answer in a gap, that
        bridge was taken for it, the talk before it lost)."""
        uid, bridge = h.get("uniqueid", ""), h.get("bridgeuniqueid", "")
        ch = self._channels.get(uid)
        if ch is not None and ch.hung_up_at is None:
            ch.bridge = bridge
            leg = next(reversed(ch.legs.values()), None)
        elif uid in self._dest_of:
            owner, key = self._dest_of[uid]
            ch = self._channels.get(owner)
            leg = self._leg(owner, key)
            if leg is not None:
                leg.bridge = bridge
        else:
            return []
        if ch is None or leg is None or ch.hung_up_at is not None:
            return []
        # A leg of no uniqueid (a DialBegin without DestUniqueid) cannot be told in a bridge.
        if not any(x.answered for x in ch.legs.values()) and not leg.over \
                and ((bridge and ch.bridge == leg.bridge) or not leg.followed):
            leg.answered_at, leg.answered_tick = stamp(h, at)
        return []

    def _on_hangup(self, h: dict[str, str], at: Received) -> list[ChannelEnded]:
        uid = h.get("uniqueid", "")
        ended: list[ChannelEnded] = []
        name = h.get("channel", "")
        if name:
            self._recent_hangups[name] = (stamp(h, at)[0], at.tick)
            while len(self._recent_hangups) > self._max_channels:
                self._recent_hangups.popitem(last=False)
            waiter = self._channels.get(self._reached_by.get(name, ""))
            if waiter is not None and name in waiter.waiting and waiter.waiting[name] is None:
                waiter.waiting[name], waiter.waiting_rx[name] = self._recent_hangups[name]
                if not waiter.legs and waiter.over_seen is not None:
                    # Known from its Cdrs alone: the Cdr of that leg's end (how long it talked
                    # on after a transfer, posted by the Local ;1 half it was bridged to)
                    # comes after its Hangup - the grace runs from this end, not the first Cdr.
                    waiter.over_seen = self._monotonic()
                ended += self._if_over(waiter.uniqueid)
        found = self._dest_of.pop(uid, None)
        if found is not None:
            owner, key = found
            leg = self._leg(owner, key)
            if leg is not None and leg.ended_at is None:
                leg.ended_at, leg.ended_tick = stamp(h, at)
                leg.ended_rx = at.tick
            ended += self._if_over(owner)
        ch = self._channels.get(uid)
        if ch is not None and (ch.hung_up_at is None or ch.end_assumed):
            # (an end only assumed gives way to the channel's own Hangup: its real time)
            ch.hung_up_at, ch.hung_up_tick = stamp(h, at)
            ch.hung_up_rx, ch.end_assumed = at.tick, False
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
        self._beyond(uid, cdr)
        ch = self._channels.get(uid)
        if ch is None:
            if not cdr.is_dial or not self._settled.welcomes(uid, cdr):
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
            # A gated channel not followed whole may have made Dials we never saw begin
            # (each its own authorization's): their Cdrs may still be on their way, each an
            # event of its own - the grace, always.
            unseen = bool(ch.authorizations) and not self._seen_whole(ch)
            waiting = not ch.cdrs_out or unseen or any(
                ch.cdr_of(leg) is None for leg in ch.legs.values())
        else:
            # No Dial seen: whole, it made none (its non-Dial Cdr is enough); not whole, its
            # Cdrs may still be landing (a Hangup can come between two of them): the grace.
            waiting = not (self._seen_whole(ch) and ch.cdrs_out)
        return [] if waiting else [self._settle(ch)]

    def _seen_whole(self, ch: Channel) -> bool:
        if not ch.legs and ch.connected_to and ch.connected_to != ch.caller_number:
            return False  # no Dial seen, yet connected to a number: its Dial's events dropped
        return ch.life_seen and ch.life_generation == self._generation

    def _settle(self, ch: Channel, *, lost: bool = False) -> ChannelEnded:
        self._forget(ch)
        whole = not lost and (self._seen_whole(ch) or ch.cdrs_out)
        # Not followed whole, a gated channel's Cdrs are its evidence - unless those that came
        # are all of unanswered Dials: a failover's answered Dial's Cdr may still be on its way
        # (Asterisk posts them together, but one can reach us later than the grace). Its holds
        # are then flagged, and that late Cdr, and only an answered Dial's, still settles them.
        if whole and ch.authorizations and not self._seen_whole(ch) and _unanswered_only(ch):
            whole = False
            self._settled.add(ch.uniqueid, True, answered_welcome=True, cdrs=tuple(ch.cdrs))
        else:
            self._settled.add(ch.uniqueid, whole, cdrs=tuple(ch.cdrs))
        dials = dials_of_channel(ch, whole=self._seen_whole(ch), gated_names=self._gated_names)
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
        return ChannelEnded(settle, legs_awaited=ch.end_assumed)

    # -- small helpers ----------------------------------------------------------------------

    def _channel(self, uid: str, began: float | None = None) -> Channel:
        ch = self._channels.get(uid)
        if ch is None:
            self._make_room()
            ch = self._channels[uid] = Channel(
                uid, began if began is not None else self._clock(), self._generation,
                seen_tick=self._monotonic())
        ch.generation = self._generation
        return ch

    def _leg(self, uid: str, key: str, channel: str = "") -> Leg | None:
        ch = self._channels.get(uid)
        if ch is None:
            return None
        ch.generation = self._generation
        leg = ch.legs.get(key)
        if leg is None and channel:
            leg = next((leg for leg in ch.legs.values() if leg.dest_channel == channel), None)
        return leg

    def _forget(self, ch: Channel) -> None:
        self._channels.pop(ch.uniqueid, None)
        for name in ch.waiting:
            if self._reached_by.get(name) == ch.uniqueid:
                del self._reached_by[name]
        for leg in ch.legs.values():
            if self._dest_of.get(leg.dest_uniqueid, ("",))[0] == ch.uniqueid:
                del self._dest_of[leg.dest_uniqueid]
            if self._dialled_by.get(leg.dest_channel) == ch.uniqueid:
                del self._dialled_by[leg.dest_channel]

    def _follow_by_name(self, ch: Channel, cdr: CdrRecord) -> None:
        """A channel known from its Cdrs alone (its DialBegin missed): the channel an answered
        Dial of it reached may still be up - transferred, it talks on with the target. It is
        followed by name (its uniqueid was in the DialBegin) until it hangs up."""
        dest = cdr.destination_channel
        if ch.legs or cdr.disposition != Disposition.ANSWERED or not dest:
            return
        self._wait_for(ch, dest)

    def _beyond(self, uid: str, cdr: CdrRecord) -> None:
        for name in (cdr.channel, cdr.destination_channel):
            owner = self._channels.get(
                self._reached_by.get(name, "") or self._dialled_by.get(name, ""))
            if owner is not None and owner.uniqueid != uid and cdr not in owner.beyond:
                owner.beyond.append(cdr)
                return

    def _wait_for(self, ch: Channel, dest: str) -> None:
        self._reached_by[dest] = ch.uniqueid
        if dest in self._recent_hangups:
            ch.waiting[dest], ch.waiting_rx[dest] = self._recent_hangups[dest]
        elif dest not in ch.waiting:
            ch.waiting[dest] = None

    @staticmethod
    def _leg_up(ch: Channel, live: AbstractSet[str]) -> bool:
        """A channel its Dial reached is listed live (by uniqueid, or by name for the legs a
        channel known from its Cdrs waits on)."""
        return any(leg.dest_uniqueid in live for leg in ch.legs.values()) or any(
            name in live for name, ended in ch.waiting.items() if ended is None)

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


def _alive_after_all(ch: Channel) -> None:
    """The channel whose end was assumed (the PBX's listing left it out) asks the gate or
    dials: it is up. Its end is its own Hangup's, when that comes (found by a review: a channel
    dialling again under a second authorization was settled while that Dial talked, the new
    hold released)."""
    if ch.end_assumed:
        ch.hung_up_at = ch.hung_up_rx = ch.over_seen = None
        ch.end_assumed = False


def _unanswered_only(ch: Channel) -> bool:
    """Its Dial Cdrs that came are all of Dials nobody answered (none came: not so)."""
    dials = [cdr for cdr in ch.cdrs if cdr.is_dial]
    return bool(dials) and all(cdr.disposition != Disposition.ANSWERED for cdr in dials)
