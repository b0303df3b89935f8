"""Log lines that a flood cannot multiply: at most one per kind per interval, with a count.

A process out of file descriptors makes asyncio's accept loop fail, log through the loop's
exception handler ('socket.accept() out of system resource', selector_events.py
`_accept_connection`) and retry after 1 s (constants.ACCEPT_RETRY_DELAY) - for every listening
socket, for as long as it lasts: 365 MB of log in 80 s (issue 14, finding 5). The same goes
for a flood of connections that never send a request. `rate_limited_exception_handler` is the
daemon's loop exception handler; `RateLimiter` is what the gate's fault lines go through.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

LOG_INTERVAL_SECONDS = 10.0
_MAX_KINDS = 256  # kinds are a fixed vocabulary; a bound all the same


class RateLimiter:
    """Admits one event of a kind per `interval`; counts the ones it holds back."""

    def __init__(self, interval: float = LOG_INTERVAL_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def admit(self, kind: str) -> int | None:
        """None to hold this one back; else how many of its kind were held back since the
        last one admitted."""
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self._interval:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return None
        if last is None and len(self._last) >= _MAX_KINDS:
            oldest = min(self._last, key=self._last.__getitem__)
            del self._last[oldest]
            self._suppressed.pop(oldest, None)
        self._last[kind] = now
        return self._suppressed.pop(kind, 0)


ExceptionHandler = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]


def rate_limited_exception_handler(
    interval: float = LOG_INTERVAL_SECONDS, clock: Callable[[], float] = time.monotonic,
) -> ExceptionHandler:
    """A loop exception handler that passes one report per kind (its message and the
    exception's type and errno) per `interval` to the loop's default handler, saying how many
    it held back; install with `loop.set_exception_handler`."""
    limiter = RateLimiter(interval, clock)

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message") or "unhandled exception in the event loop")
        error = context.get("exception")
        kind = f"{message}|{type(error).__name__}|{getattr(error, 'errno', None)}"
        suppressed = limiter.admit(kind)
        if suppressed is None:
            return
        if suppressed:
            context = {**context, "message": f"{message} (suppressed={suppressed} like it since "
                                             "the last report)"}
        loop.default_exception_handler(context)

    return handle
