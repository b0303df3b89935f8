"""What the daemon does with what the PBX tells it: settle ended calls, reconcile holds after
a gap, fill the extension list from the PBX's endpoints, read Asterisk's CDR store."""

from __future__ import annotations

import asyncio
import csv
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from coobill.ami.calls import EndedCall
from coobill.ami.endpoints import Endpoint, list_endpoints, phone_by_pattern
from coobill.ami.follower import AmiConnection, AmiError
from coobill.services.commands import Disposition, SettleCall, Settlement
from coobill.services.context import BillingContext
from coobill.services.extensions import ensure_extensions
from coobill.services.reservations import reconcile, release_if_unsettled
from coobill.services.settings import get_settings
from coobill.services.settlement import settle_call

log = logging.getLogger("coobill.settlement")

# cdr_csv's Master.csv columns (cdr_csv.c build_csv_record); uniqueid only with loguniqueid=yes.
MASTER_CSV = ("accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
              "lastdata", "start", "answer", "end", "duration", "billsec", "disposition",
              "amaflags", "uniqueid")
_DISPOSITIONS = {d.value: d for d in Disposition}


class PbxLink:
    """The service side of the AMI follower's callbacks."""

    max_in_flight = 64
    max_remembered = 100_000  # allowed channels remembered until they dial or hang up

    def __init__(
        self,
        ctx: BillingContext,
        *,
        on_settled: Callable[[Settlement | None], None] | None = None,
        endpoints: Callable[[], object] | None = None,
    ) -> None:
        self.ctx = ctx
        self.max_retry_delay = 5.0
        # Tasks under way -> the call's uniqueid (a live check leaves their holds alone).
        self.pending_releases: dict[asyncio.Task[None], str] = {}
        self.settling: dict[asyncio.Task[None], str] = {}
        self._allowed: OrderedDict[str, None] = OrderedDict()
        self._slots = asyncio.Semaphore(self.max_in_flight)
        self._on_settled = on_settled
        self.endpoints = endpoints

    async def call_ended(self, ended: EndedCall) -> None:
        """Hand an ended call to settlement and return, so the next AMI events are read while
        the ledger works (it serializes settlements itself). At most `max_in_flight` run at
        once; past that the event stream waits here."""
        self._allowed.pop(ended.uniqueid, None)
        await self._slots.acquire()
        task = asyncio.create_task(self._settle(ended), name=f"settle-{ended.uniqueid}")
        self.settling[task] = ended.uniqueid
        task.add_done_callback(self._settle_done)

    def _settle_done(self, task: asyncio.Task[None]) -> None:
        self.settling.pop(task, None)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("settlement.failed error=%r", task.exception())

    async def _settle(self, ended: EndedCall) -> None:
        """Settle, retrying while the ledger is unreachable or locked: a call that ended is
        debited once it can be, never dropped."""
        delay = 0.05
        while True:
            try:
                settlement = await settle_call(self.ctx, ended.settle)
                break
            except SQLAlchemyError as exc:
                log.warning("settlement.retry uniqueid=%s error=%s in=%.2fs", ended.uniqueid,
                            exc.__class__.__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_retry_delay)
        if self._on_settled is not None:
            self._on_settled(settlement)

    async def drain(self, timeout: float) -> None:
        """Wait for the settlements in flight (SIGTERM: finish them, then exit)."""
        if self.settling:
            done, pending = await asyncio.wait(set(self.settling), timeout=timeout)
            for task in pending:
                log.error("settlement.unfinished task=%s", task.get_name())

    def gate_allowed(self, uniqueid: str) -> None:
        """The gate allowed this channel: if it hangs up without dialling, release its hold."""
        self._allowed[uniqueid] = None
        while len(self._allowed) > self.max_remembered:
            self._allowed.popitem(last=False)

    async def hangup_without_dial(self, uniqueid: str) -> None:
        """Release, after the Cdr grace period, the hold of a channel that hung up without
        dialling. The wait lets a dialled call the tracker does not know (a restart in the
        middle of it) be settled by its Cdr first; then nothing is left to release.
        Only channels this daemon's gate allowed can hold anything: the many other legs that
        hang up (callee and Local channels) cost no transaction."""
        if self._allowed.pop(uniqueid, False) is False:
            return
        task = asyncio.create_task(self._release_later(uniqueid), name=f"release-{uniqueid}")
        self.pending_releases[task] = uniqueid
        task.add_done_callback(lambda done: self.pending_releases.pop(done, None))

    async def _release_later(self, uniqueid: str) -> None:
        await asyncio.sleep(self.ctx.config.ami.cdr_grace_seconds)
        if await release_if_unsettled(self.ctx, uniqueid):
            log.info("settlement.released uniqueid=%s reason=never_dialled", uniqueid)

    async def close(self, drain_seconds: float = 10.0) -> None:
        await self.drain(drain_seconds)
        for task in list(self.pending_releases):
            task.cancel()
        await asyncio.gather(*self.pending_releases, return_exceptions=True)

    async def reconciled(
        self, live: set[str], *, still_live: Callable[[], Awaitable[set[str]]] | None = None,
        occasion: str = "reconciled",
    ) -> None:
        """Settle or flag the holds of calls that ended unseen. With `still_live` (the PBX asked
        again once the holds are read) no clock is compared: a jump of the wall clock cannot
        make a live call's hold look old, nor an ended call's look new."""
        asked_at = None
        if still_live is None:
            asked_at = (await get_settings(self.ctx)).local(self.ctx.clock())
        try:
            settled, flagged = await reconcile(
                self.ctx, live, asked_at=asked_at, find_cdr=self.find_in_cdr_store,
                still_live=still_live,
            )
        except AmiError as exc:
            # The PBX could not be asked again (the connection went meanwhile): nothing was
            # flagged or settled, and the next login reconciles again.
            log.warning("settlement.reconcile_deferred reason=ami_lost error=%s", exc)
            return
        log.info("settlement.%s live=%d settled=%d flagged=%d",
                 occasion, len(live), len(settled), len(flagged))

    async def live_check(
        self, live: set[str], *, still_live: Callable[[], Awaitable[set[str]]]
    ) -> None:
        """During a session: settle or flag the holds whose channel is gone though no end
        was seen (Asterisk drops events for a manager client that falls behind). `live` holds
        the channels up and the calls awaiting their Cdr; the calls whose settlement or
        release is under way here count as live too."""
        under_way = {*self.settling.values(), *self.pending_releases.values()}
        await self.reconciled(live | under_way, still_live=still_live,
                              occasion="live_checked")

    async def find_in_cdr_store(self, uniqueid: str) -> SettleCall | None:
        path = self.ctx.config.ami.cdr_csv_path
        return find_in_master_csv(Path(path), uniqueid) if path else None


def find_in_master_csv(path: Path, uniqueid: str) -> SettleCall | None:
    """The dialling leg's record of `uniqueid` in cdr_csv's Master.csv, if it is there."""
    try:
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            for row in csv.reader(handle):
                if len(row) < len(MASTER_CSV):
                    continue
                rec = dict(zip(MASTER_CSV, row, strict=False))
                if rec["uniqueid"] == uniqueid and rec["lastapp"] == "Dial":
                    return _settle_from_csv(rec)
    except OSError as exc:
        log.warning("settlement.cdr_store_unreadable path=%s error=%s", path, exc)
    return None


def _settle_from_csv(rec: dict[str, str]) -> SettleCall:
    from coobill.ami.calls import parse_callerid, trunk_of_channel

    name, _ = parse_callerid(rec["clid"])

    def when(text: str) -> datetime | None:
        try:
            return datetime.strptime(text, "%Y-%m-%d %H:%M:%S") if text else None
        except ValueError:
            return None

    return SettleCall(
        uniqueid=rec["uniqueid"], caller_extension=rec["src"], caller_name=name,
        dialled_number=rec["dst"], start=when(rec["start"]), answer=when(rec["answer"]),
        end=when(rec["end"]), billable_seconds=int(rec["billsec"] or 0),
        disposition=_DISPOSITIONS.get(rec["disposition"], Disposition.FAILED),
        trunk=trunk_of_channel(rec["dstchannel"]), evidence="cdr_store",
    )


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
