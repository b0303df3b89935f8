"""What the daemon has done so far, for whoever watches it (tests, a future status page).

Each kind of progress is a `Tally`: a count that only grows, and a way to wait until it
reaches a number - on state, not on log lines. The daemon adds; observers read or wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["DaemonEvents", "Tally"]


class Tally:
    """A count of one kind of progress; `await tally.reached(n)` until it is at least n."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = asyncio.Event()
        self.listeners: list[Callable[[], None]] = []

    def add(self) -> None:
        self.count += 1
        # Wakes every waiter; each looks at the count again and waits anew if short of it.
        self._changed.set()
        self._changed = asyncio.Event()
        for listener in self.listeners:
            listener()

    async def reached(self, count: int, timeout: float = 10.0) -> None:
        """Return once the count is at least `count`; TimeoutError after `timeout` seconds."""
        async with asyncio.timeout(timeout):
            while self.count < count:
                await self._changed.wait()

    def __repr__(self) -> str:
        return f"Tally({self.count})"


@dataclass(frozen=True)
class DaemonEvents:
    """The daemon's progress since it started."""

    # Ended channels whose settlement committed (one per channel, whatever its Dials).
    settled: Tally = field(default_factory=Tally)
    # Reconciliations of the holds with the PBX's live channels after a login.
    reconciled: Tally = field(default_factory=Tally)
    # Checks of the holds against the live channels during a session.
    live_checked: Tally = field(default_factory=Tally)
    # Webhook events delivered to every configured URL (daemon/webhooks.py).
    webhooks_delivered: Tally = field(default_factory=Tally)
    # Checks for the recurring fees due (daemon/fees.py), whatever they charged.
    fee_checks: Tally = field(default_factory=Tally)

    def watch(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every count that grows (daemon/status.py)."""
        for tally in (self.settled, self.reconciled, self.live_checked, self.webhooks_delivered,
                      self.fee_checks):
            tally.listeners.append(listener)
