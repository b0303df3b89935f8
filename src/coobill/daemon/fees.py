"""The fee charger: a supervised task of the daemon that charges the recurring fees due
(services/fees.py says when a fee is due and why each period is charged once), at start and
every `billing.fee_check_seconds`. Like the webhook sender it is off the gate's path: its
charges are units of work queued like a recharge.

The wall clock decides which periods have begun (in the PBX's time zone), and a wall clock
can jump forward - set wrong by hand, a bad time source - and come back. A period is
charged once and for ever, so one that only a jump has begun must not be: each check after
the first compares how far the wall clock moved with how much time passed (the monotonic
clock); what the wall clock ran ahead by is distrusted - periods are charged through the
wall time less that - until it comes back or has kept pace for TRUST_AFTER_SECONDS (a
clock set right, e.g. by NTP at boot, is then believed: its periods are charged late, not
lost). The first check of a run trusts the wall clock: there is nothing to compare with,
and the periods missed while the daemon was down are due.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from coobill.daemon.supervised import SupervisedTask
from coobill.services import fees
from coobill.services.context import BillingContext

__all__ = ["FeeCharger"]

log = logging.getLogger("coobill.fees")

# How far the wall clock may run ahead of (or behind) the elapsed time between two checks
# before it is taken for a jump (NTP's slewing and a loaded machine's late wake-ups stay
# well within it).
JUMP_SECONDS = 60.0
# How long a wall clock that jumped ahead must keep pace before it is believed.
TRUST_AFTER_SECONDS = 600.0


class FeeCharger:
    def __init__(self, ctx: BillingContext, *,
                 on_checked: Callable[[list[fees.FeeCharged]], None] | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.ctx = ctx
        self._on_checked = on_checked
        self._monotonic = monotonic
        self._last: tuple[datetime, float] | None = None  # the last check's wall, monotonic
        self._ahead = timedelta()  # how far the wall clock is distrusted
        self._jumped_at = 0.0  # when (monotonic) it last jumped ahead
        self._task = SupervisedTask("fees", self._run, log=log, died="fees.charger_died")

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def check(self) -> list[fees.FeeCharged]:
        """Charge what is due, through the wall time less what it is distrusted by."""
        wall, elapsed = self.ctx.clock(), self._monotonic()
        if self._last is not None:
            self._follow(wall - self._last[0] - timedelta(seconds=elapsed - self._last[1]),
                         elapsed)
        self._last = (wall, elapsed)
        return await fees.charge_due(self.ctx, through=wall - self._ahead)

    def _follow(self, moved: timedelta, elapsed: float) -> None:
        """Account for the wall clock having `moved` this much more than the time elapsed."""
        seconds = moved.total_seconds()
        if seconds > JUMP_SECONDS:
            self._ahead += moved
            self._jumped_at = elapsed
            log.warning("fees.clock_jumped ahead_seconds=%.0f distrusted_seconds=%.0f",
                        seconds, self._ahead.total_seconds())
        elif seconds < -JUMP_SECONDS and self._ahead:
            self._ahead = max(timedelta(), self._ahead + moved)  # back: less to distrust
        if self._ahead and elapsed - self._jumped_at >= TRUST_AFTER_SECONDS:
            log.info("fees.clock_trusted after_seconds=%.0f", elapsed - self._jumped_at)
            self._ahead = timedelta()

    async def _run(self) -> None:
        while True:
            try:
                charged = await self.check()
            except Exception as exc:  # noqa: BLE001 - the ledger unreachable or locked: the next check
                log.warning("fees.check_failed error=%r", exc)
            else:
                if self._on_checked is not None:
                    self._on_checked(charged)
            await asyncio.sleep(self.ctx.config.billing.fee_check_seconds)
