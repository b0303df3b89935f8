"""Following calls on the AMI event stream: which channel dialled, how it ended, for how long.

Pure: no sockets, no clock of its own (one is injected), so the same tracker runs live behind
`AmiFollower` and offline over a recorded trace.

What it follows: every channel that dials (the caller side of a `DialBegin`; a `Cdr` whose
LastApplication is Dial for a channel it never saw dial), gated or not. The service layer
decides what to bill; the gated channel's Uniqueid is the AGI's agi_uniqueid and the CDR's
UniqueID of the dialling leg.

Where the truth comes from:
- evidence "cdr": Asterisk's own CDR of the dialling leg, i.e. the `Cdr` event whose UniqueID
  is the dialling channel and whose LastApplication is Dial (needs cdr_manager). Its
  BillableSeconds, Disposition (CONGESTION -> FAILED), times and trunk are taken as given.
- evidence "events": without cdr_manager, DialEnd ANSWER (or the first BridgeEnter) to the
  dialling channel's Hangup, truncated to whole seconds as Asterisk truncates billsec. It
  agrees with the CDR within +-1 s (the events are stamped when they leave Asterisk, or when
  we read them, not at the instant the CDR engine records). A caller who gives up while it
  rings is CANCEL here (DialEnd CANCEL) where the CDR says NO ANSWER.

Ordering: the `Cdr` and the `Hangup` of a channel come from different Asterisk subscribers
and arrive in either order; a busy call posts two Cdrs for one UniqueID (Dial, then Hangup);
a failover or `Dial(A&B)` posts one Dial-Cdr per target. A call is settled once: when a
Dial-Cdr has arrived for every target its DialBegins named, or - once the channel has hung
up - from the Cdrs seen so far or from the events, after `cdr_grace_seconds` when Cdr events
are known to flow, at once otherwise.
"""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Literal

from coobill.services.commands import Disposition, SettleCall

__all__ = [
    "CallTracker",
    "CdrMode",
    "EndedCall",
    "parse_callerid",
    "trunk_of_channel",
]

log = logging.getLogger("coobill.ami")

CdrMode = Literal["auto", "on", "off"]

_CDR_TIME = "%Y-%m-%d %H:%M:%S"

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

_CDR_DISPOSITION = {
    "ANSWERED": Disposition.ANSWERED,
    "BUSY": Disposition.BUSY,
    "NO ANSWER": Disposition.NO_ANSWER,
    "FAILED": Disposition.FAILED,
    "CANCEL": Disposition.CANCEL,
    "CONGESTION": Disposition.FAILED,
}

_QUOTED_CALLERID = re.compile(r'^\s*"(?P<name>(?:[^"\\]|\\.)*)"\s*<(?P<num>[^>]*)>\s*$')
_PLAIN_CALLERID = re.compile(r"^\s*(?P<name>[^<]*?)\s*<(?P<num>[^>]*)>\s*$")


@dataclass(frozen=True, slots=True)
class EndedCall:
    """A dialling channel has ended: what to settle, and the channel it dialled."""

    settle: SettleCall
    destination_channel: str

    @property
    def uniqueid(self) -> str:
        return self.settle.uniqueid


def trunk_of_channel(channel: str) -> str | None:
    """The endpoint (or, for a Local channel, the context) a dialled channel went out on.

    `PJSIP/carrier-a-00000001` -> `carrier-a` (endpoint names may contain '-'),
    `Local/13800000000@carrier-00000016;1` -> `carrier`.
    """
    tech, slash, resource = channel.strip().partition("/")
    if not slash or not resource:
        return None
    if tech.lower() == "local":
        name = resource.rsplit(";", 1)[0].rsplit("-", 1)[0]
        _, at, context = name.rpartition("@")
        return context or None if at else None
    return resource.rsplit("-", 1)[0] or None


def parse_callerid(value: str) -> tuple[str, str]:
    """Split `"Name" <number>` into (name, number); Asterisk's `<unknown>` becomes ""."""
    value = value.strip()
    match = _QUOTED_CALLERID.match(value) or _PLAIN_CALLERID.match(value)
    if match is not None:
        name = match["name"].replace('\\"', '"').replace("\\\\", "\\")
        return _known(name), _known(match["num"])
    # ast_callerid_merge writes a bare name or a bare number when only one is set.
    if value.isdigit() or value.startswith("+"):
        return "", value
    return _known(value), ""


def _known(value: str) -> str:
    value = value.strip()
    return "" if value in ("<unknown>", "unknown") else value


def _headers(event: Mapping[str, Any]) -> dict[str, str]:
    """Lower-case header names (Uniqueid vs UniqueID); a repeated header keeps its first value."""
    headers: dict[str, str] = {}
    for key, value in event.items():
        if isinstance(value, list | tuple):
            value = value[0] if value else ""
        headers[str(key).lower()] = "" if value is None else str(value)
    return headers


@dataclass(frozen=True, slots=True)
class _Cdr:
    uniqueid: str
    source: str
    destination: str
    callerid: str
    destination_channel: str
    start: datetime | None
    answer: datetime | None
    end: datetime | None
    billable_seconds: int
    disposition: Disposition

    @classmethod
    def parse(cls, h: Mapping[str, str]) -> _Cdr:
        raw = h.get("disposition", "").strip().upper()
        disposition = _CDR_DISPOSITION.get(raw)
        if disposition is None:
            log.warning("ami.cdr_unknown_disposition uniqueid=%s disposition=%r",
                        h.get("uniqueid", ""), raw)
            disposition = Disposition.FAILED
        return cls(
            uniqueid=h.get("uniqueid", ""),
            source=h.get("source", ""),
            destination=h.get("destination", ""),
            callerid=h.get("callerid", ""),
            destination_channel=h.get("destinationchannel", ""),
            start=_cdr_time(h.get("starttime", "")),
            answer=_cdr_time(h.get("answertime", "")),
            end=_cdr_time(h.get("endtime", "")),
            billable_seconds=max(int(h.get("billableseconds", "0") or "0"), 0),
            disposition=disposition,
        )


def _cdr_time(value: str) -> datetime | None:
    value = value.strip()
    return datetime.strptime(value, _CDR_TIME) if value else None


@dataclass(slots=True)
class _Dialling:
    """A channel that dialled, from its first DialBegin until it is settled."""

    uniqueid: str
    caller_number: str
    caller_name: str
    exten: str
    began: float
    generation: int
    # Each dialled channel -> its last DialStatus ("" while it rings).
    destinations: dict[str, str] = field(default_factory=dict)
    answered_at: float | None = None
    answered_destination: str = ""
    hung_up_at: float | None = None
    hung_up_seen: float | None = None  # on the monotonic clock: the Cdr grace runs from it
    # The monotonic instants of the answer and the hangup, when their times came from our
    # clock (events without a Timestamp): talk time is measured on them, so a step of the
    # wall clock during a call (NTP, an operator) cannot lengthen or shorten it.
    answered_tick: float | None = None
    hung_up_tick: float | None = None
    dial_cdrs: dict[str, _Cdr] = field(default_factory=dict)

    @property
    def every_target_has_a_cdr(self) -> bool:
        # Counted, not matched by name: a masquerade can rename the dialled channel between
        # its DialBegin and its CDR. dial_cdrs is keyed by channel, so a repeat counts once.
        return bool(self.dial_cdrs) and len(self.dial_cdrs) >= len(self.destinations)


class _RecentlySettled:
    """The last `size` settled uniqueids, so a late Cdr or a repeated event is not a new call."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, uniqueid: str) -> None:
        self._ids[uniqueid] = None
        self._ids.move_to_end(uniqueid)
        while len(self._ids) > self._size:
            self._ids.popitem(last=False)

    def __contains__(self, uniqueid: object) -> bool:
        return uniqueid in self._ids


class CallTracker:
    """Turns AMI events into exactly one `EndedCall` per dialling channel."""

    def __init__(
        self,
        *,
        trunk_of: Callable[[str], str | None] = trunk_of_channel,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] | None = None,
        tz: tzinfo | None = None,
        cdr_events: CdrMode = "auto",
        cdr_grace_seconds: float = 5.0,
        max_channels: int = 10_000,
        remember_settled: int = 10_000,
    ) -> None:
        if cdr_events not in ("auto", "on", "off"):
            raise ValueError(f"cdr_events must be auto, on or off, not {cdr_events!r}")
        self._trunk_of = trunk_of
        self._clock = clock
        # Durations (the Cdr grace, events-mode talk time) are measured on a monotonic clock;
        # an injected wall clock (tests, replays) drives both.
        self._monotonic = monotonic or (time.monotonic if clock is time.time else clock)
        self._tz = tz
        self._cdr_mode: CdrMode = cdr_events
        self._cdr_seen = False
        self._cdr_absent = False  # "auto": a grace period ran out and no Cdr was ever seen
        self._grace = cdr_grace_seconds
        self._max_channels = max_channels
        self._channels: dict[str, _Dialling] = {}
        self._settled = _RecentlySettled(remember_settled)
        self._generation = 0
        self._handlers: dict[str, Callable[[dict[str, str]], list[EndedCall]]] = {
            "dialbegin": self._on_dial_begin,
            "dialend": self._on_dial_end,
            "bridgeenter": self._on_bridge_enter,
            "hangup": self._on_hangup,
            "cdr": self._on_cdr,
        }

    # -- what the follower calls ------------------------------------------------------------

    def feed(self, event: Mapping[str, Any]) -> list[EndedCall]:
        """Take one AMI event (any kind; the irrelevant ones are ignored)."""
        h = _headers(event)
        handler = self._handlers.get(h.get("event", "").lower())
        return handler(h) if handler is not None else []

    def expire(self, now: float | None = None) -> list[EndedCall]:
        """Settle hung-up channels whose Dial-Cdr has not come within the grace period
        (`now` on the tracker's monotonic clock)."""
        now = self._monotonic() if now is None else now
        due = [
            ch for ch in self._channels.values()
            if ch.hung_up_seen is not None and now - ch.hung_up_seen >= self._grace
        ]
        if due and self._cdr_mode == "auto" and not self._cdr_seen and not self._cdr_absent:
            self._cdr_absent = True
            log.warning("ami.no_cdr_events grace=%ss: billing from channel events (load "
                        "cdr_manager, enabled = yes, for Asterisk's own billsec)", self._grace)
        return [self._settle(ch) for ch in due]

    def flush(self) -> list[EndedCall]:
        """Settle every hung-up channel now, with what is known (shutting down: no Cdr will come)."""
        return [self._settle(ch) for ch in list(self._channels.values())
                if ch.hung_up_at is not None]

    def begin_session(self) -> None:
        """A new AMI connection starts: what follows may be after a gap.

        "auto" keeps trusting Cdr events across reconnects: forgetting would settle the calls
        that outlived a network blip from events. If Asterisk came back without cdr_manager,
        calls are only late by the grace period, still settled (from events)."""
        self._generation += 1

    def reconcile(self, live: AbstractSet[str]) -> list[str]:
        """Forget dialling channels that ended during a gap (not live, not heard of since the
        reconnect); returns their uniqueids. Their end was never seen, so nothing is settled."""
        lost = [
            uid for uid, ch in self._channels.items()
            if ch.hung_up_at is None and ch.generation < self._generation and uid not in live
        ]
        for uid in lost:
            del self._channels[uid]
        return lost

    def awaiting_cdr(self) -> set[str]:
        """The dialling channels that hung up and wait for their Cdr (or the grace) to be
        settled: their end is known, their settlement is on its way."""
        return {uid for uid, ch in self._channels.items() if ch.hung_up_at is not None}

    def knows_dialling(self, uniqueid: str) -> bool:
        """Whether `uniqueid` dialled (in progress, awaiting its Cdr, or settled)."""
        return uniqueid in self._channels or uniqueid in self._settled

    def live_uniqueids(self) -> set[str]:
        """Dialling channels that have not hung up yet."""
        return {uid for uid, ch in self._channels.items() if ch.hung_up_at is None}

    @property
    def cdr_events_expected(self) -> bool:
        """"auto" expects Cdr events until a call's grace period ran out with none ever seen:
        so with cdr_manager loaded even the first call is billed from its Cdr."""
        if self._cdr_mode != "auto":
            return self._cdr_mode == "on"
        return self._cdr_seen or not self._cdr_absent

    # -- events -----------------------------------------------------------------------------

    def _on_dial_begin(self, h: dict[str, str]) -> list[EndedCall]:
        uid = h.get("uniqueid", "")
        # No caller Uniqueid: an Originate dialling out, not a channel running a Dial.
        if not uid or uid in self._settled:
            return []
        ch = self._channels.get(uid)
        if ch is None:
            self._make_room()
            ch = self._channels[uid] = _Dialling(
                uniqueid=uid,
                caller_number=_known(h.get("calleridnum", "")),
                caller_name=_known(h.get("calleridname", "")),
                exten=h.get("exten", ""),
                began=self._event_time(h),
                generation=self._generation,
            )
        elif ch.hung_up_at is not None:
            return []
        ch.generation = self._generation
        ch.destinations.setdefault(h.get("destchannel", ""), "")
        return []

    def _on_dial_end(self, h: dict[str, str]) -> list[EndedCall]:
        ch = self._live(h.get("uniqueid", ""))
        if ch is None:
            return []
        destination = h.get("destchannel", "")
        status = h.get("dialstatus", "").strip().upper()
        ch.destinations[destination] = status
        if status == "ANSWER" and ch.answered_at is None:
            ch.answered_at, ch.answered_tick = self._event_time_and_tick(h)
            ch.answered_destination = destination
        return []

    def _on_bridge_enter(self, h: dict[str, str]) -> list[EndedCall]:
        ch = self._live(h.get("uniqueid", ""))
        if ch is not None and ch.answered_at is None and ch.destinations:
            # No DialEnd ANSWER seen (lost, or a Dial that bridges without one): the bridge is
            # the answer.
            ch.answered_at, ch.answered_tick = self._event_time_and_tick(h)
            ch.answered_destination = next(reversed(ch.destinations))
        return []

    def _on_hangup(self, h: dict[str, str]) -> list[EndedCall]:
        ch = self._live(h.get("uniqueid", ""))
        if ch is None:
            return []
        ch.hung_up_at, ch.hung_up_tick = self._event_time_and_tick(h)
        ch.hung_up_seen = self._monotonic()
        if self.cdr_events_expected and not ch.every_target_has_a_cdr:
            return []  # settled by the Cdr, or by expire() after the grace period
        return [self._settle(ch)]

    def _on_cdr(self, h: dict[str, str]) -> list[EndedCall]:
        if self._cdr_mode == "off":
            return []
        self._cdr_seen = True
        uid = h.get("uniqueid", "")
        if h.get("lastapplication", "").strip().lower() != "dial" or not uid:
            return []
        if uid in self._settled:
            return []
        try:
            cdr = _Cdr.parse(h)
        except ValueError as exc:
            log.warning("ami.cdr_unreadable uniqueid=%s error=%s", uid, exc)
            return []
        ch = self._channels.get(uid)
        if ch is None:
            # Its DialBegin was missed (before we connected, or in a gap): the Cdr says it all.
            self._make_room()
            ch = self._channels[uid] = _Dialling(
                uniqueid=uid, caller_number="", caller_name="", exten="",
                began=self._clock(), generation=self._generation,
            )
        ch.dial_cdrs.setdefault(cdr.destination_channel, cdr)
        ch.generation = self._generation
        # Asterisk posts a channel's CDRs when it dies; with one per dialled target, the call
        # is complete once every target's has come.
        if ch.every_target_has_a_cdr:
            return [self._settle(ch)]
        return []

    # -- settling ---------------------------------------------------------------------------

    def _live(self, uid: str) -> _Dialling | None:
        ch = self._channels.get(uid)
        if ch is None or ch.hung_up_at is not None:
            return None
        ch.generation = self._generation
        return ch

    def _settle(self, ch: _Dialling) -> EndedCall:
        del self._channels[ch.uniqueid]
        self._settled.add(ch.uniqueid)
        if ch.dial_cdrs:
            return self._from_cdrs(ch, ch.dial_cdrs.values())
        return self._from_events(ch)

    def _from_cdrs(self, ch: _Dialling, cdrs: Iterable[_Cdr]) -> EndedCall:
        cdrs = list(cdrs)
        answered = [c for c in cdrs if c.disposition == Disposition.ANSWERED]
        if len(answered) > 1:
            log.warning("ami.several_answered_dials uniqueid=%s count=%d billed=longest",
                        ch.uniqueid, len(answered))
        cdr = max(answered, key=lambda c: c.billable_seconds) if answered else cdrs[-1]
        name, number = parse_callerid(cdr.callerid)
        settle = SettleCall(
            uniqueid=ch.uniqueid,
            caller_extension=cdr.source or number or ch.caller_number,
            caller_name=name or ch.caller_name,
            dialled_number=cdr.destination or ch.exten,
            start=cdr.start,
            answer=cdr.answer,
            end=cdr.end,
            billable_seconds=cdr.billable_seconds,
            disposition=cdr.disposition,
            trunk=self._trunk_of(cdr.destination_channel) if cdr.destination_channel else None,
            evidence="cdr",
        )
        return EndedCall(settle, cdr.destination_channel)

    def _from_events(self, ch: _Dialling) -> EndedCall:
        end, end_tick = (ch.hung_up_at, ch.hung_up_tick) if ch.hung_up_at is not None \
            else (self._clock(), self._monotonic())
        if ch.answered_at is not None:
            disposition = Disposition.ANSWERED
            talk = end - ch.answered_at
            if ch.answered_tick is not None and end_tick is not None:
                talk = end_tick - ch.answered_tick  # both ours: the monotonic clock
            # Truncated like Asterisk's billsec (main/cdr.c: (end - answer) ms / 1000).
            billsec = max(int(talk), 0)
            destination = ch.answered_destination
        else:
            statuses = [s for s in ch.destinations.values() if s]
            disposition = _DIAL_STATUS.get(statuses[-1], Disposition.FAILED) if statuses \
                else Disposition.NO_ANSWER
            billsec = 0
            destination = next(reversed(ch.destinations), "") if ch.destinations else ""
        settle = SettleCall(
            uniqueid=ch.uniqueid,
            caller_extension=ch.caller_number,
            caller_name=ch.caller_name,
            dialled_number=ch.exten,
            start=self._local(ch.began),
            answer=self._local(ch.answered_at) if ch.answered_at is not None else None,
            end=self._local(end),
            billable_seconds=billsec,
            disposition=disposition,
            trunk=self._trunk_of(destination) if destination else None,
            evidence="events",
        )
        return EndedCall(settle, destination)

    # -- small helpers ----------------------------------------------------------------------

    def _event_time(self, h: Mapping[str, str]) -> float:
        """The event's `Timestamp` (manager.conf timestampevents=yes), else our clock."""
        return self._event_time_and_tick(h)[0]

    def _event_time_and_tick(self, h: Mapping[str, str]) -> tuple[float, float | None]:
        """The event's time, and the monotonic instant when that time is our own clock's
        (None when Asterisk stamped the event: its own clock then measures the call)."""
        stamp = h.get("timestamp", "")
        if stamp:
            try:
                return float(stamp), None
            except ValueError:
                pass
        return self._clock(), self._monotonic()

    def _local(self, epoch: float) -> datetime:
        if self._tz is None:
            return datetime.fromtimestamp(epoch)
        return datetime.fromtimestamp(epoch, self._tz).replace(tzinfo=None)

    def _make_room(self) -> None:
        # A last guard on memory: reconcile() normally forgets what a gap left behind.
        while len(self._channels) >= self._max_channels:
            uid = next(iter(self._channels))
            log.warning("ami.tracker_full dropped=%s max_channels=%d", uid, self._max_channels)
            del self._channels[uid]
