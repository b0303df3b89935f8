"""Where argon2 runs: in threads of its own, a few at a time, never on the event loop.

One argon2 hash costs ~0.1 s of CPU and 64 MiB. Run on the event loop it stops the gate's
answers for that long; run while a unit of work is open it holds SQLite's write lock as long.
So a password is checked in three steps: read the user (a short unit of work, closed), hash
here, then write what changed (a rehash) in a short unit of work of its own.

argon2-cffi calls libargon2 through a cffi out-of-line module, and cffi releases the GIL for
the length of every such C call, so these threads hash while the loop goes on answering.
At most `concurrent` hashes run at once and at most `waiting` more wait for a thread; past
that a login is refused at once (PasswordChecksBusy, HTTP 503) instead of queueing without
bound: a flood of logins costs at most `concurrent` cores, whatever its size.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from coobill.errors import PasswordChecksBusy  # re-exported: its home is errors.py

T = TypeVar("T")

# One hash at a time on two cores, two beyond: a core is always left to the gate. Each hash
# runs one argon2 lane (users.py, parallelism=1): on a two-core machine four lanes per hash
# took the cache and memory bandwidth the gate needed (tests/faults/test_attacks.py).
CONCURRENT_HASHES = max(1, min(2, (os.cpu_count() or 2) - 1))
WAITING_HASHES = 8


def _idle_priority() -> None:
    """A hashing thread runs under SCHED_IDLE (sched(7)): the kernel gives it a CPU only when
    nothing else wants one, so argon2 never delays the gate, even on a machine with two cores
    and a flood of logins. Linux applies the policy to the calling thread (pid 0)."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux: the nice level must do
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


class PasswordWork:
    """A bounded pool for password hashing: `concurrent` threads, `waiting` queued."""

    def __init__(
        self, *, concurrent: int = CONCURRENT_HASHES, waiting: int = WAITING_HASHES
    ) -> None:
        self.concurrent = concurrent
        self.waiting = waiting
        self._slots = asyncio.Semaphore(concurrent)
        self._queued = 0
        self._executor: ThreadPoolExecutor | None = None
        self.running = 0  # hashes in a thread now (tests and metrics read it)
        self.peak = 0

    @property
    def queued(self) -> int:
        """Password checks waiting for a thread."""
        return self._queued

    async def run(self, work: Callable[[], T]) -> T:
        """`work()` in a hashing thread; PasswordChecksBusy when the queue is full."""
        if self._slots.locked() and self._queued >= self.waiting:
            raise PasswordChecksBusy("too many logins at once; try again in a moment")
        self._queued += 1
        try:
            await self._slots.acquire()
        finally:
            self._queued -= 1
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                self.concurrent, thread_name_prefix="coobill-hash", initializer=_idle_priority
            )
        self.running += 1
        self.peak = max(self.peak, self.running)
        future = asyncio.get_running_loop().run_in_executor(self._executor, work)
        # The slot is freed when the thread is done, not when a caller stops waiting: a
        # cancelled login must not let a third hash start beside a second still running.
        future.add_done_callback(self._finished)
        return await asyncio.shield(future)

    def _finished(self, _: object) -> None:
        self.running -= 1
        self._slots.release()
