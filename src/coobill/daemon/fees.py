"""The fee charger: a supervised task of the daemon that charges the recurring fees due
(services/fees.py says when a fee is due and why each period is charged once), at start and
every `billing.fee_check_seconds`. Like the webhook sender it is off the gate's path: its
charges are units of work queued like a recharge."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from coobill.daemon.supervised import SupervisedTask
from coobill.services import fees
from coobill.services.context import BillingContext

__all__ = ["FeeCharger"]

log = logging.getLogger("coobill.fees")


class FeeCharger:
    def __init__(self, ctx: BillingContext, *,
                 on_checked: Callable[[list[fees.FeeCharged]], None] | None = None) -> None:
        self.ctx = ctx
        self._on_checked = on_checked
        self._task = SupervisedTask("fees", self._run, log=log, died="fees.charger_died")

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

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
