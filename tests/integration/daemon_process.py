"""`coobill run` in a process of its own, watched as systemd watches it: over a NOTIFY_SOCKET
of the test's own, READY=1 once the gate listens, then STATUS= lines with what the daemon
has done so far (daemon/status.py). Tests wait on those counts - the daemon's state - and
read the gate's port from them; the log is kept for the failure message."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.integration.daemons import WAIT

_STATUS = re.compile(r"gate port (\d+).*settled (\d+); reconciled (\d+); live checks (\d+)")


@dataclass(frozen=True)
class Status:
    gate_port: int
    settled: int
    reconciled: int
    live_checks: int


class DaemonProcess:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []
        self.ready = False
        self.status: Status | None = None
        self._changed = asyncio.Event()
        self._folder = tempfile.TemporaryDirectory()
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._notify.bind(str(Path(self._folder.name) / "notify"))
        self._notify.setblocking(False)
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def gate_port(self) -> int:
        assert self.status is not None
        return self.status.gate_port

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "coobill.cli.main", "run",
            env={**self.env, "NOTIFY_SOCKET": self._notify.getsockname()},
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        self._tasks = [asyncio.create_task(self._read_notifications()),
                       asyncio.create_task(self._read_log())]
        await self.until(lambda s: True)
        assert self.ready

    async def _read_notifications(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            datagram = (await loop.sock_recv(self._notify, 4096)).decode()
            for line in datagram.splitlines():
                if line == "READY=1":
                    self.ready = True
                elif line.startswith("STATUS=") and (found := _STATUS.search(line)):
                    self.status = Status(*(int(g) for g in found.groups()))
            self._changed.set()

    async def _read_log(self) -> None:
        assert self.proc is not None
        assert self.proc.stderr is not None
        while raw := await self.proc.stderr.readline():
            self.lines.append(raw.decode())
            self._changed.set()
        self._changed.set()  # it exited

    async def until(self, wanted: Callable[[Status], bool]) -> Status:
        """Until the daemon is ready and its status shows `wanted`."""
        assert self.proc is not None
        async with asyncio.timeout(WAIT):
            while not (self.ready and self.status is not None and wanted(self.status)):
                if self.proc.returncode is not None or self._tasks[1].done():
                    raise AssertionError("the daemon exited:\n" + "".join(self.lines))
                self._changed.clear()
                await self._changed.wait()
        assert self.status is not None
        return self.status

    async def until_logged(self, fragment: str) -> None:
        """Until the log has a line with `fragment`: only where the line itself is the
        moment wanted (a kill at the instant a debit is written, inside its transaction)."""
        async with asyncio.timeout(WAIT):
            while not any(fragment in line for line in self.lines):
                if self._tasks[1].done():
                    raise AssertionError(f"the daemon exited before {fragment!r}:\n"
                                         + "".join(self.lines))
                self._changed.clear()
                await self._changed.wait()

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        await self.proc.wait()
        await self._close()

    async def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(WAIT):
            code = await self.proc.wait()
            await self._tasks[1]  # the log read to its end
        await self._close()
        return code

    async def _close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._notify.close()
        self._folder.cleanup()
