"""Hand-made AMI events, shaped as Asterisk 23 sends them (ASTERISK.md §3.1, §3.3), and a
tracker on a clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from coobill.ami.calls import CallTracker, ChannelEnded, Received

EPOCH = datetime(2026, 11, 22, 14, 0, 0, tzinfo=UTC)


class Clock:
    """Seconds since EPOCH, moved by the test; drives the wall and the monotonic clock."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return EPOCH.timestamp() + self.t

    def at(self, t: float) -> None:
        self.t = t


def cdr_time(t: float | None) -> str:
    """A Cdr time in the PBX's local time (the tests' PBX runs in UTC)."""
    if t is None:
        return ""
    return (EPOCH + timedelta(seconds=int(t))).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S")


def dial_begin(uid: str, dest_uid: str, dest: str, *, exten: str = "90012345678",
               caller: str = "100", channel: str = "PJSIP/100-00000001") -> dict[str, str]:
    return {"Event": "DialBegin", "Channel": channel, "Uniqueid": uid, "Linkedid": uid,
            "CallerIDNum": caller, "CallerIDName": "Alice", "Exten": exten,
            "DestChannel": dest, "DestUniqueid": dest_uid, "DestLinkedid": uid,
            "DialString": "x"}


def dial_end(uid: str, dest_uid: str, dest: str, status: str = "ANSWER") -> dict[str, str]:
    return {"Event": "DialEnd", "Uniqueid": uid, "DestChannel": dest, "DestUniqueid": dest_uid,
            "DialStatus": status}


def bridge_enter(uid: str) -> dict[str, str]:
    return {"Event": "BridgeEnter", "Uniqueid": uid, "BridgeUniqueid": "b-" + uid}


def hangup(uid: str, channel: str = "") -> dict[str, str]:
    return {"Event": "Hangup", "Uniqueid": uid, "Channel": channel, "Cause": "16"}


def cdr(uid: str, *, dest_channel: str, start: float, answer: float | None, end: float,
        destination: str = "90012345678", source: str = "100", app: str = "Dial",
        channel: str = "PJSIP/100-00000001") -> dict[str, str]:
    """A Cdr event; billsec is end - answer, truncated, as main/cdr.c computes it."""
    billsec = int(end - answer) if answer is not None else 0
    return {"Event": "Cdr", "AccountCode": "", "Source": source, "Destination": destination,
            "DestinationContext": "phones", "CallerID": f'"Alice" <{source}>',
            "Channel": channel, "DestinationChannel": dest_channel, "LastApplication": app,
            "LastData": "PJSIP/x@trunk", "StartTime": cdr_time(start),
            "AnswerTime": cdr_time(answer), "EndTime": cdr_time(end),
            "Duration": str(int(end - start)), "BillableSeconds": str(billsec),
            "Disposition": "ANSWERED" if answer is not None else "NO ANSWER",
            "AMAFlags": "DOCUMENTATION", "UniqueID": uid, "UserField": ""}


class Feed:
    """A tracker in a logged-in session, fed at the clock's times; collects what ended."""

    def __init__(self, **tracker: object) -> None:
        self.clock = Clock()
        self.tracker = CallTracker(clock=self.clock, **tracker)  # type: ignore[arg-type]
        self.tracker.begin_session()
        self.tracker.connected()
        self.ended: list[ChannelEnded] = []

    def at(self, t: float, *events: dict[str, str]) -> None:
        self.clock.at(t)
        for event in events:
            self.ended += self.tracker.feed(event, Received(self.clock(), self.clock()))
        self.ended += self.tracker.expire()

    def authorized(self, t: float, uid: str, token: str, extension: str = "") -> None:
        """The daemon's marker: the gate allowed `uid` (paid by `extension`) at `t`."""
        self.clock.at(t)
        self.tracker.authorized(uid, token, extension=extension)

    def later(self, seconds: float = 60.0) -> None:
        self.clock.at(self.clock.t + seconds)
        self.ended += self.tracker.expire()
