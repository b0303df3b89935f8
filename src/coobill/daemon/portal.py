"""The portal's process, from the daemon's side: started, answered, restarted when it dies.

The daemon binds the portal's port itself and hands the socket to each portal process it
starts (so the port is known at once, stays the same across restarts, and connections wait
in the backlog meanwhile). It sends the portal its settings and keys over the link, answers
its /healthz and /metrics questions one at a time (a flood of probes costs the daemon one
query at a time, never a pile), and when the portal exits - crashed, killed, out of memory -
logs it and starts another after a back-off (0.5 s doubling to 30 s; back to 0.5 s once one
has lived a minute). The gate never waits for any of this.

On a machine of two CPUs or more the portal and the daemon run on CPUs of their own
(`CpuSplit`): the portal on the last of those the daemon's process may use, the daemon -
its gate, its ledger thread, every thread it has - on the others. A flood of portal work (a login
flood's hashes) can then take its CPU but never the gate's. With the portal on one CPU at
nice 10 and the daemon on any, a flood of 50 bad logins still had the gate wait for a CPU
0.34-0.54 ms a request (0.03-0.18 without) and its p99 rose 1.4-2.1 ms over the worst turn
without the flood in 3 of 7 runs; with the daemon kept off the portal's CPU, 0.06-0.15 ms
and at most +0.3 ms in 11 of 11 (docs/benchmarks.md, 2026-12-07).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from coobill.config import WebConfig
from coobill.web.connections import listen
from coobill.web.process import encode, read_message

log = logging.getLogger("coobill.daemon")

RESTART_FIRST_SECONDS = 0.5
RESTART_MAX_SECONDS = 30.0
# A portal that lived this long is counted healthy: its next restart is quick again.
HEALTHY_SECONDS = 60.0
# A portal told to stop (its link closed) gets this long before it is killed.
STOP_SECONDS = 10.0


def _affinity() -> frozenset[int]:
    try:
        return frozenset(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return frozenset()


# The CPUs this process may use, as it started (before any daemon in it kept off a CPU).
_CPUS = _affinity()
_keeping_off: set[int] = set()  # the splits of this process keeping a daemon off (by id())


class CpuSplit:
    """The CPUs the daemon's process may use, split: the last for the portal, the others for
    the daemon. Nothing to split on one CPU (or off Linux)."""

    def __init__(self) -> None:
        self.cpus = _CPUS
        self.portal: frozenset[int] | None = None
        self.daemon: frozenset[int] | None = None
        if len(self.cpus) > 1:
            self.portal = frozenset({max(self.cpus)})
            self.daemon = self.cpus - self.portal

    def place_portal(self, pid: int) -> None:
        """Before the portal's process has a thread of its own: its threads inherit it."""
        if self.portal is not None:
            with contextlib.suppress(OSError):  # it has exited already
                os.sched_setaffinity(pid, self.portal)

    def keep_daemon_off(self) -> None:
        """Every thread of the daemon's process on the daemon's CPUs (a thread it starts
        later inherits them from the thread that starts it)."""
        if self.daemon is not None and id(self) not in _keeping_off:
            _keeping_off.add(id(self))
            _every_thread(self.daemon)

    def give_back(self) -> None:
        """The process's threads on every CPU again, once no daemon in it keeps off one."""
        if id(self) in _keeping_off:
            _keeping_off.discard(id(self))
            if not _keeping_off:  # (tests run several daemons in one process)
                _every_thread(self.cpus)


def _every_thread(cpus: frozenset[int]) -> None:
    with contextlib.suppress(OSError):  # no /proc: nothing is placed
        for tid in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError):  # a thread that ended meanwhile
                os.sched_setaffinity(int(tid), cpus)


class PortalProcess:
    def __init__(self, web: WebConfig, hello: dict[str, Any],
                 answer: Callable[[str], Awaitable[dict[str, Any]]]) -> None:
        self.cpus = CpuSplit()
        self.listener = listen(web)
        self._hello, self._answer = hello, answer
        self.process: asyncio.subprocess.Process | None = None
        self.ready_count = 0  # how many portal processes came up (1 + restarts)
        self.exits = 0
        self._link: asyncio.StreamWriter | None = None
        self._stopping = asyncio.Event()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    async def start(self, timeout: float = 60.0) -> None:
        """Start supervising; return once the first portal serves (or has already failed:
        then it is logged and retried, and the daemon goes on gating)."""
        self._task = asyncio.create_task(self._supervise(), name="portal-supervisor")
        with contextlib.suppress(TimeoutError):
            await self.until(lambda: self.ready_count >= 1 or self.exits >= 1, timeout)

    async def until(self, done: Callable[[], bool], timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not done():
                self._changed.clear()
                await self._changed.wait()

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = RESTART_FIRST_SECONDS
        while not self._stopping.is_set():
            began = loop.time()
            returncode = await self._run_once()
            self.exits += 1
            self._changed.set()
            if self._stopping.is_set():
                break
            if loop.time() - began >= HEALTHY_SECONDS:
                backoff = RESTART_FIRST_SECONDS
            log.error("web.exited returncode=%s restart_in=%.1f", returncode, backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), backoff)
            backoff = min(backoff * 2, RESTART_MAX_SECONDS)

    async def _run_once(self) -> int | None:
        ours, theirs = socket.socketpair()
        try:
            self.process = process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "coobill.web.process",
                str(theirs.fileno()), str(self.listener.fileno()), str(os.getpid()),
                pass_fds=(theirs.fileno(), self.listener.fileno()),
                # Its own session: Ctrl-C at `make run` reaches the daemon, which ends it.
                start_new_session=True,
            )
        except OSError as exc:
            ours.close()
            log.error("web.start_failed error=%s", exc)
            return None
        finally:
            theirs.close()
        # It waits for its hello before it starts a thread: placed now, all its threads are.
        self.cpus.place_portal(process.pid)
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        self._link = writer
        if self._stopping.is_set():  # stop() came while this one was starting
            writer.close()
        try:
            writer.write(encode({"hello": self._hello}))
            await self._follow(reader, writer, process.pid)
        except (ConnectionError, ValueError) as exc:
            log.error("web.link_failed pid=%s error=%s", process.pid, exc)
        finally:
            self._link = None
            writer.close()
        try:
            async with asyncio.timeout(STOP_SECONDS):
                return await process.wait()
        except TimeoutError:
            log.error("web.killed pid=%s reason=did_not_stop", process.pid)
            process.kill()
            return await process.wait()

    async def _follow(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      pid: int) -> None:
        while (message := await read_message(reader)) is not None:
            if message.get("ready"):
                self.ready_count += 1
                self._changed.set()
                log.info("web.listening host=%s port=%s pid=%s", self.listener.getsockname()[0],
                         self.port, pid)
            elif "ask" in message:
                try:
                    answer = await self._answer(str(message["ask"]))
                except Exception as exc:  # noqa: BLE001 - a probe's failure is its answer, not the daemon's
                    log.warning("web.answer_failed ask=%s error=%s", message["ask"], exc)
                    answer = {"status": 503, "type": "application/json",
                              "body": '{"status":"unhealthy","daemon":"error"}'}
                writer.write(encode({"id": message.get("id"), **answer}))
                await writer.drain()

    async def stop(self) -> None:
        """End the portal (it exits when its link closes) and stop restarting it."""
        self._stopping.set()
        if self._link is not None:
            self._link.close()
        if self._task is not None:
            await self._task
        self.listener.close()
