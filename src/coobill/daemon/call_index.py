"""The call indexer: a supervised task of the daemon that takes the call records into the
keyword index after their settlement (SQLite; storage/call_search.py, migration 0010).

A settlement writes its call record and nothing of the index: the indexer, nudged by each
batch of settlements, waits PACE_SECONDS so that the records gather, then takes them in, a
BATCH per unit of work on the ledger thread, with BEHIND_PAUSE_SECONDS between batches while
it is behind (the gate's units queue between them). It also looks every EVERY_SECONDS (a
call the CLI recorded) and once at start (those recorded while it was not running); a round
that fails (the ledger locked, unreachable) is logged and the next one takes the calls in.
The search reads what it has not taken in yet in full, so the records are found meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from functools import partial

from coobill.daemon.supervised import SupervisedTask
from coobill.services.context import BillingContext
from coobill.storage import call_search

__all__ = ["CallIndexer"]

log = logging.getLogger("coobill.call_index")

PACE_SECONDS = 1.0
EVERY_SECONDS = 60.0
BEHIND_PAUSE_SECONDS = 0.02


class CallIndexer:
    def __init__(self, ctx: BillingContext, *,
                 on_indexed: Callable[[], None] | None = None) -> None:
        self.ctx = ctx
        self._on_indexed = on_indexed
        self._wake = asyncio.Event()
        self._task = SupervisedTask("call_index", self._run, log=log,
                                    died="call_index.indexer_died")

    @staticmethod
    async def wanted(ctx: BillingContext) -> bool:
        """This ledger has the keyword index to keep."""
        async with ctx.uow.read() as uow:
            return await call_search.has_index(uow.session)

    def start(self) -> None:
        self._task.start()

    def nudge(self) -> None:
        """Calls were recorded: take them in soon."""
        self._wake.set()

    async def stop(self) -> None:
        await self._task.stop()

    async def index(self) -> int:
        """Take every call not yet in the index in, a batch at a time; how many."""
        taken = 0
        while True:
            now = await self.ctx.uow.run(partial(call_search.index_next,
                                                 limit=call_search.BATCH))
            taken += now
            if now < call_search.BATCH:
                break
            await asyncio.sleep(BEHIND_PAUSE_SECONDS)  # pacing: the gate's turn between batches
        return taken

    async def _run(self) -> None:
        while True:
            try:
                taken = await self.index()
            except Exception as error:  # noqa: BLE001 - the ledger unreachable, locked: next round
                log.warning("call_index.failed error=%r", error)
            else:
                if taken:
                    log.debug("call_index.indexed calls=%d", taken)
                if self._on_indexed is not None:
                    self._on_indexed()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), EVERY_SECONDS)
            self._wake.clear()
            await asyncio.sleep(PACE_SECONDS)  # pacing: the records of a burst gather
