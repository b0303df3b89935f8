"""One background task of the daemon, supervised: started under its name, said in the log if
it ends by an error (nothing else would retrieve it), cancelled and awaited when the daemon
stops. The fee charger and the webhook sender each run in one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["SupervisedTask"]


class SupervisedTask:
    def __init__(self, name: str, run: Callable[[], Coroutine[Any, Any, None]], *,
                 log: logging.Logger, died: str) -> None:
        self.name = name
        self._run = run
        self._log = log
        self._died = died  # the log event when it ends by an error
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._log.error("%s error=%r", self._died, task.exception())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
