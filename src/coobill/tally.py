"""A count that only grows, and a way to wait until it reaches a number: how the daemon and
the AMI follower say what they have done, so that whoever watches them (tests, the systemd
status line) waits on state, not on log lines. No coobill imports: any layer may use it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["Tally"]


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
