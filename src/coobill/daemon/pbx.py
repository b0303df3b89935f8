"""Glue between the AMI follower and the services: settle ended channels (services/pbx_sync.py
says how hard to try), reconcile holds after a gap (services/reservations.py), with Asterisk's
CDR store (ami/cdr_store.py) as evidence of what the follower missed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path

from coobill.ami.calls import ChannelEnded
from coobill.ami.cdr_store import MasterCsv
from coobill.ami.session import AmiError
from coobill.services.commands import SettleChannel, Settlement
from coobill.services.context import BillingContext
from coobill.services.pbx_sync import MAX_RETRY_DELAY, settle_until_done
from coobill.services.reservations import answered_legs, reconcile, talking_legs
from coobill.services.settings import billing_settings

__all__ = ["PbxLink"]

log = logging.getLogger("coobill.settlement")

OnSettled = Callable[[list[Settlement]], None]
# Live channels holding funds to follow (uniqueid -> tokens), of them the gone ones whose
# transferred leg talks on (uniqueid -> the legs' names), and of those the ones whose legs the
# PBX no longer lists either (settled from Master.csv once the Cdr grace has passed).
OnExpect = Callable[[dict[str, list[str]], dict[str, list[str]], set[str]], None]
# The PBX's live channels, asked now (uniqueids and names; AmiError when it cannot be asked).
LiveChannels = Callable[[], Awaitable[set[str]]]


class PbxLink:
    """The service side of the AMI follower's callbacks."""

    max_in_flight = 64

    def __init__(
        self,
        ctx: BillingContext,
        *,
        on_settled: OnSettled | None = None,
        on_expect: OnExpect | None = None,
        live_channels: LiveChannels | None = None,
    ) -> None:
        self.ctx = ctx
        self.max_retry_delay = MAX_RETRY_DELAY
        # Settlements under way -> the channel's uniqueid (a live check leaves their holds alone).
        self.settling: dict[asyncio.Task[None], str] = {}
        self._slots = asyncio.Semaphore(self.max_in_flight)
        self._on_settled = on_settled
        self._on_expect = on_expect
        self._live_channels = live_channels
        self._master_csv: MasterCsv | None = None

    async def call_ended(self, ended: ChannelEnded) -> None:
        """Hand an ended channel to settlement and return, so the next AMI events are read
        while the ledger works. At most `max_in_flight` run at once; past that the event
        stream waits here."""
        await self._slots.acquire()
        task = asyncio.create_task(self._settle(ended), name=f"settle-{ended.uniqueid}")
        self.settling[task] = ended.uniqueid
        task.add_done_callback(self._settle_done)

    def _settle_done(self, task: asyncio.Task[None]) -> None:
        """Supervises each settlement: one that died (not one the ledger refused: that one
        said so itself) is said with its channel's uniqueid."""
        uniqueid = self.settling.pop(task, "")
        self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("settlement.failed uniqueid=%s error=%r", uniqueid, task.exception())

    async def _settle(self, ended: ChannelEnded) -> None:
        """Settle one ended channel; evidence the AMI follower lacked is looked for in
        Asterisk's CDR store first."""
        cmd = ended.settle
        if cmd.leftover == "flag":
            found = (await self.find_in_cdr_store([cmd.uniqueid])).get(cmd.uniqueid)
            if found is not None and await self._talks_on(found, awaited=ended.legs_awaited):
                return
            if found is not None and _answered(found):
                # The PBX said its legs are gone; one may have hung up after the file was
                # read, and its rows (a transferred leg's: how long it talked on) came with
                # its end - read again, now that they are in.
                found = (await self.find_in_cdr_store([cmd.uniqueid])).get(cmd.uniqueid) or found
            cmd = found or cmd
        settlements = await settle_until_done(self.ctx, cmd, max_retry_delay=self.max_retry_delay)
        if settlements is not None and self._on_settled is not None:
            self._on_settled(settlements)

    async def _talks_on(self, found: SettleChannel, *, awaited: bool) -> bool:
        """Whether a channel whose end the follower missed may still have a call going on,
        or rows to come: an answered Dial's leg the PBX lists live (the caller transferred
        it; Master.csv has the rows up to the transfer only) - then it is handed back to be
        followed until that leg hangs up. A leg the PBX no longer lists may have hung up a
        moment ago: the CDR engine writes the rows of its end (how long it talked on after a
        transfer) after the channel has left the PBX's list - so unless that wait was
        `awaited` already, it is handed back too, over, to be settled from the file once the
        Cdr grace has passed. The PBX is asked first; when it cannot be, nothing is settled
        now (the reconcile after the next login looks again)."""
        if self._live_channels is None or not _answered(found):
            return False
        try:
            live = await self._live_channels()
        except AmiError as exc:
            log.warning("settlement.deferred uniqueid=%s reason=ami_lost error=%s",
                        found.uniqueid, exc)
            return True
        if self._on_expect is None:
            return False
        uid = found.uniqueid
        legs = talking_legs(found, live)
        if legs:
            log.info("settlement.talking_on uniqueid=%s legs=%s", uid, ",".join(legs))
            self._on_expect({uid: []}, {uid: legs}, set())
            return True
        if awaited:
            return False
        gone = answered_legs(found)
        log.info("settlement.rows_awaited uniqueid=%s legs=%s", uid, ",".join(gone))
        self._on_expect({uid: []}, {uid: gone}, {uid})
        return True

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
            asked_at = (await billing_settings(self.ctx)).local(self.ctx.clock())
        try:
            done = await reconcile(
                self.ctx, live, asked_at=asked_at, find_cdr=self.find_in_cdr_store,
                still_live=still_live, rows_to_come=self._on_expect is not None,
            )
        except AmiError as exc:
            # The PBX could not be asked again (the connection went meanwhile): nothing was
            # flagged or settled, and the next login reconciles again.
            log.warning("settlement.reconcile_deferred reason=ami_lost error=%s", exc)
            self.ctx.progress.reconciles_deferred.add()
            return
        if self._on_expect is not None:
            self._on_expect(done.live, done.talking_on | done.rows_awaited,
                            set(done.rows_awaited))
        log.info("settlement.%s live=%d settled=%d flagged=%d rows_awaited=%d",
                 occasion, len(live), len(done.settled), len(done.flagged),
                 len(done.rows_awaited))

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
        """What Master.csv says of these channels (nothing when none is configured). One
        reader per path: lookups asked together share one read of the file."""
        ami = self.ctx.config.ami
        if not ami.cdr_csv_path or not uniqueids:
            return {}
        store = self._master_csv
        path = Path(ami.cdr_csv_path)
        if store is None or store.path != path or store.gmt != ami.cdr_csv_gmt:
            store = self._master_csv = MasterCsv(path, gmt=ami.cdr_csv_gmt)
        return await store.find(uniqueids)


def _answered(found: SettleChannel) -> bool:
    return bool(answered_legs(found))
