"""What the daemon does with what the PBX tells it: settle ended channels, reconcile holds
after a gap, fill the extension list from the PBX's endpoints."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path

from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from coobill.ami.calls import ChannelEnded
from coobill.ami.cdr_store import find_in_master_csv
from coobill.ami.endpoints import Endpoint, list_endpoints, phone_by_pattern
from coobill.ami.follower import AmiConnection, AmiError
from coobill.services.commands import SettleChannel, Settlement
from coobill.services.context import BillingContext
from coobill.services.extensions import ensure_extensions
from coobill.services.reservations import reconcile
from coobill.services.settings import get_settings
from coobill.services.settlement import settle_channel

log = logging.getLogger("coobill.settlement")

OnSettled = Callable[[list[Settlement]], None]
OnExpect = Callable[[dict[str, list[str]]], None]


class PbxLink:
    """The service side of the AMI follower's callbacks."""

    max_in_flight = 64

    def __init__(
        self,
        ctx: BillingContext,
        *,
        on_settled: OnSettled | None = None,
        on_expect: OnExpect | None = None,
    ) -> None:
        self.ctx = ctx
        self.max_retry_delay = 5.0
        # Settlements under way -> the channel's uniqueid (a live check leaves their holds alone).
        self.settling: dict[asyncio.Task[None], str] = {}
        self._slots = asyncio.Semaphore(self.max_in_flight)
        self._on_settled = on_settled
        self._on_expect = on_expect

    async def call_ended(self, ended: ChannelEnded) -> None:
        """Hand an ended channel to settlement and return, so the next AMI events are read
        while the ledger works. At most `max_in_flight` run at once; past that the event
        stream waits here."""
        await self._slots.acquire()
        task = asyncio.create_task(self._settle(ended.settle), name=f"settle-{ended.uniqueid}")
        self.settling[task] = ended.uniqueid
        task.add_done_callback(self._settle_done)

    def _settle_done(self, task: asyncio.Task[None]) -> None:
        uniqueid = self.settling.pop(task, "")
        self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("settlement.failed uniqueid=%s error=%r", uniqueid, task.exception())

    async def _settle(self, cmd: SettleChannel) -> None:
        """Settle, retrying while the ledger is unreachable or locked: a channel that ended is
        settled once it can be, never dropped. Evidence the AMI follower lacked is looked for
        in Asterisk's CDR store first."""
        if cmd.leftover == "flag":
            found = await self.find_in_cdr_store([cmd.uniqueid])
            cmd = found.get(cmd.uniqueid, cmd)
        delay = 0.05
        while True:
            try:
                settlements = await settle_channel(self.ctx, cmd)
                break
            except (OperationalError, InterfaceError) as exc:
                # The ledger unreachable or locked: it will come back.
                log.warning("settlement.retry uniqueid=%s error=%s in=%.2fs", cmd.uniqueid,
                            exc.__class__.__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_retry_delay)
            except SQLAlchemyError as exc:
                # Retrying cannot help (the ledger refuses this settlement as it is): said with
                # everything an operator needs to settle it by hand, and the stream goes on.
                log.error("settlement.failed uniqueid=%s error=%r call=%r", cmd.uniqueid, exc,
                          cmd)
                return
        if self._on_settled is not None:
            self._on_settled(settlements)

    async def drain(self, timeout: float) -> None:
        """Wait for the settlements in flight (SIGTERM: finish them, then exit)."""
        if self.settling:
            _, pending = await asyncio.wait(set(self.settling), timeout=timeout)
            for task in pending:
                log.error("settlement.unfinished uniqueid=%s", self.settling.get(task, ""))

    async def close(self, drain_seconds: float = 10.0) -> None:
        await self.drain(drain_seconds)

    async def reconciled(
        self, live: set[str], *, still_live: Callable[[], Awaitable[set[str]]] | None = None,
        occasion: str = "reconciled",
    ) -> None:
        """Settle or flag the holds of calls that ended unseen, and follow the live channels
        holding funds. With `still_live` (the PBX asked again once the holds are read) no clock
        is compared: a jump of the wall clock cannot make a live call's hold look old, nor an
        ended call's look new."""
        asked_at = None
        if still_live is None:
            asked_at = (await get_settings(self.ctx)).local(self.ctx.clock())
        try:
            done = await reconcile(
                self.ctx, live, asked_at=asked_at, find_cdr=self.find_in_cdr_store,
                still_live=still_live,
            )
        except AmiError as exc:
            # The PBX could not be asked again (the connection went meanwhile): nothing was
            # flagged or settled, and the next login reconciles again.
            log.warning("settlement.reconcile_deferred reason=ami_lost error=%s", exc)
            return
        if self._on_expect is not None:
            self._on_expect(done.live)
        log.info("settlement.%s live=%d settled=%d flagged=%d",
                 occasion, len(live), len(done.settled), len(done.flagged))

    async def live_check(
        self, live: set[str], *, still_live: Callable[[], Awaitable[set[str]]]
    ) -> None:
        """During a session: settle or flag the holds whose channel is gone though no end
        was seen (Asterisk drops events for a manager client that falls behind). `live` holds
        the channels up and those being followed; the channels whose settlement is under way
        here count as live too."""
        await self.reconciled(live | set(self.settling.values()), still_live=still_live,
                              occasion="live_checked")

    async def find_in_cdr_store(self, uniqueids: Collection[str]) -> dict[str, SettleChannel]:
        ami = self.ctx.config.ami
        if not ami.cdr_csv_path or not uniqueids:
            return {}
        return await find_in_master_csv(Path(ami.cdr_csv_path), uniqueids, gmt=ami.cdr_csv_gmt)


async def sync_extensions(ctx: BillingContext) -> list[str]:
    """Give each phone endpoint of the PBX a billing row (billing off); trunks are skipped and
    existing rows are left untouched. Returns the new extension numbers."""
    ami = ctx.config.ami
    async with AmiConnection(ami.host, ami.port, ami.username, ami.secret) as connection:
        endpoints = await list_endpoints(connection.request, is_phone=phone_by_pattern(ami.phone_pattern))
    return await add_phones(ctx, endpoints)


async def add_phones(ctx: BillingContext, endpoints: list[Endpoint]) -> list[str]:
    phones = [(e.name, e.caller_name) for e in endpoints if e.is_phone]
    created = await ensure_extensions(ctx, phones)
    if created:
        log.info("extensions.synced created=%s", ",".join(created))
    return created
