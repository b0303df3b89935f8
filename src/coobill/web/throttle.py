"""Login throttling: too many failed passwords for one name from one address → 429."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

MAX_FAILURES = 5
WINDOW_SECONDS = 300.0


class LoginThrottle:
    """Failures per (user name, client address), in memory; a success forgets them."""

    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILURES,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def retry_after(self, name: str, address: str) -> int:
        """Seconds until this name may try again from this address; 0 when it may now."""
        recent = self._recent((name.lower(), address))
        if len(recent) < self.max_failures:
            return 0
        return max(1, int(recent[0] + self.window - self._clock()) + 1)

    def failed(self, name: str, address: str) -> None:
        key = (name.lower(), address)
        self._recent(key).append(self._clock())
        if len(self._failures) > 10_000:  # an address spraying names must not grow this forever
            self._forget_stale()

    def succeeded(self, name: str, address: str) -> None:
        self._failures.pop((name.lower(), address), None)

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= self._clock() - self.window:
            times.popleft()
        return times

    def _forget_stale(self) -> None:
        for key in [k for k, v in self._failures.items() if not self._recent(k)]:
            del self._failures[key]
