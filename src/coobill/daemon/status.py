"""The daemon's progress as systemd's STATUS= line: `systemctl status coobill` shows it.

    STATUS=gate port 4573; AMI connected; settled 1234; reconciled 2; live checks 17

It says what `Daemon.events` count (daemon/events.py), so whoever supervises the daemon -
systemd, or a test running `coobill run` with a NOTIFY_SOCKET of its own - waits on the
daemon's state, not on its log. Sent when a count changes, at most every `interval` seconds
(a busy PBX settles hundreds of calls a second; the latest counts always go out, late by
at most that), and a no-op outside systemd (no NOTIFY_SOCKET: nothing is sent).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from coobill import systemd
from coobill.daemon.events import DaemonEvents

__all__ = ["StatusLine", "status_text"]


def status_text(events: DaemonEvents, gate_port: int | None, ami_connected: bool | None) -> str:
    parts = [f"gate port {gate_port}" if gate_port is not None else "gate off"]
    if ami_connected is not None:
        parts.append("AMI connected" if ami_connected else "AMI not connected")
    parts += [f"settled {events.settled.count}", f"reconciled {events.reconciled.count}",
              f"live checks {events.live_checked.count}"]
    return "; ".join(parts)


class StatusLine:
    """Sends `text()` as STATUS= whenever `changed()` is called, throttled."""

    def __init__(self, text: Callable[[], str], interval: float = 0.2) -> None:
        self._text = text
        self._interval = interval
        self._last = float("-inf")
        self._pending: asyncio.TimerHandle | None = None
        self.enabled = bool(os.environ.get("NOTIFY_SOCKET"))

    def changed(self) -> None:
        if not self.enabled or self._pending is not None:
            return
        loop = asyncio.get_running_loop()
        wait = self._last + self._interval - loop.time()
        if wait <= 0:
            self.send()
        else:
            self._pending = loop.call_later(wait, self.send)

    def send(self) -> None:
        self._pending = None
        self._last = asyncio.get_running_loop().time()
        systemd.notify("STATUS=" + self._text())

    def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
