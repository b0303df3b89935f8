"""Reading an AMI event: its headers, whatever their case, and its time.

panoramisk hands a `Message` (a dict whose header names keep Asterisk's case: Uniqueid in
one event, UniqueID in the Cdr, cdr_manager.c:312-336); the tracker reads lower-cased names.
An event's time is its Timestamp when Asterisk stamped it (manager.conf timestampevents =
yes), else when the daemon received it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from panoramisk.utils import CaseInsensitiveDict  # type: ignore[import-untyped]

from coobill.services.commands import Disposition

__all__ = ["DIAL_STATUS", "Received", "headers", "stamp", "utc"]

# DialEnd's DialStatus (app_dial.c) as a disposition.
DIAL_STATUS = {
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


def headers(event: Mapping[str, Any]) -> dict[str, str]:
    """Lower-case header names (Uniqueid vs UniqueID); a repeated header keeps its first value."""
    if isinstance(event, CaseInsensitiveDict):
        # panoramisk's Message keeps {lower-cased name: (name, value)} in `_store`
        # (panoramisk/utils.py, CaseInsensitiveDict.__setitem__); its items() go through the
        # Mapping mixin, a lower() and a lookup a header, and were a fifth of the loop's time
        # a settled call.
        pairs: Iterable[tuple[str, Any]] = (
            (lower, given) for lower, (_, given) in event._store.items())
    else:
        pairs = ((str(key).lower(), given) for key, given in event.items())
    found: dict[str, str] = {}
    for key, given in pairs:
        value = (given[0] if given else "") if isinstance(given, list | tuple) else given
        found[key] = "" if value is None else str(value)
    return found


def stamp(h: Mapping[str, str], at: Received) -> tuple[float, float | None]:
    """The event's time, and the monotonic instant when that time is when we received it
    (None when Asterisk stamped the event, timestampevents = yes: its clock measures)."""
    text = h.get("timestamp", "")
    if text:
        try:
            return float(text), None
        except ValueError:
            pass
    return at.wall, at.tick


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
