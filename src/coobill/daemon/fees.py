"""The fee charger: a supervised task of the daemon that charges the recurring fees due
(services/fees.py says when a fee is due and why each period is charged once), at start and
every `billing.fee_check_seconds`. Like the webhook sender it is off the gate's path: its
charges are units of work queued like a recharge."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from coobill.services import fees
from coobill.services.context import BillingContext

__all__ = ["FeeCharger"]

log = logging.getLogger("coobill.fees")


class FeeCharger:
    def __init__(self, ctx: BillingContext, *,
                 on_checked: Callable[[list[fees.FeeCharged]], None] | None = None) -> None:
        self.ctx = ctx
        self._on_checked = on_checked
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="fees")
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("fees.charger_died error=%r", task.exception())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                charged = await fees.charge_due(self.ctx)
            except Exception as exc:  # noqa: BLE001 - the ledger unreachable or locked: the next check
                log.warning("fees.check_failed error=%r", exc)
            else:
                if self._on_checked is not None:
                    self._on_checked(charged)
            await asyncio.sleep(self.ctx.config.billing.fee_check_seconds)
