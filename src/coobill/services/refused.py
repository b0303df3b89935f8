"""Refused calls: every DENY of the gate leaves a record - when, which extension, which number,
why, and how long the gate took to say so - that the call records and statistics show.

Recording must not slow the gate, nor a dialling storm fill the disk:
- the gate's decision callback only appends to a bounded in-memory queue (`RefusedLog.note`,
  no I/O, O(1)); when the queue is full the newest refusals are counted and dropped, never
  waited for;
- a task of the daemon writes the queue in batches, each one multi-row INSERT in one unit
  of work, a short moment after the first refusal of a batch arrived - so after the gate
  has answered it;
- the records are kept for `[records] refused_keep_days` days and at most
  `refused_max_rows` rows: the writer deletes the older ones, at most once a minute.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from coobill.services.commands import AuthorizeCall, Verdict
from coobill.services.context import BillingContext
from coobill.services.settings import billing_settings
from coobill.storage.tables import RefusedCall, table

log = logging.getLogger("coobill.refused")

_refused = table(RefusedCall)
_INSERT = insert(_refused)


@dataclass(frozen=True, slots=True)
class Refusal:
    """One DENY as the gate saw it; `at` an aware instant."""

    at: datetime
    uniqueid: str
    extension: str
    number: str
    reason: str
    latency_us: int


def refusal(call: AuthorizeCall | None, verdict: Verdict, latency: float,
            at: datetime) -> Refusal:
    """The record of a DENY (a request too broken to name its call has no extension)."""
    return Refusal(at=at, uniqueid=(call.uniqueid if call else "")[:64],
                   extension=(call.extension if call else "")[:32],
                   number=(call.number if call else "")[:64], reason=str(verdict.reason)[:32],
                   latency_us=max(0, min(int(latency * 1_000_000), 2**31 - 1)))


def record_refused(ctx: BillingContext, session: Session, refusals: Sequence[Refusal]) -> int:
    """Write refusals in one statement (a unit of work of UnitOfWorkFactory.run)."""
    if not refusals:
        return 0
    settings = billing_settings(session)
    pbx = ctx.config.pbx.identity()
    session.execute(_INSERT, [
        {"at": settings.local(r.at), "pbx": pbx, "uniqueid": r.uniqueid,
         "extension": r.extension, "number": r.number, "reason": r.reason,
         "latency_us": r.latency_us} for r in refusals])
    return len(refusals)


def prune_refused(ctx: BillingContext, session: Session) -> int:
    """Delete the refusals older than `refused_keep_days` and past the newest
    `refused_max_rows`; how many went."""
    keep = ctx.config.records
    cutoff = billing_settings(session).local(ctx.clock()) - timedelta(days=keep.refused_keep_days)
    gone = _deleted(session.execute(delete(_refused).where(_refused.c.at < cutoff)))
    # Ids only grow, and the rows kept have distinct ids above max(id) - refused_max_rows:
    # at most that many. One index lookup - an OFFSET of refused_max_rows walked a million
    # index entries (60 ms on SQLite, the gate's writer waiting) every minute.
    newest_dropped = select(func.max(_refused.c.id)).scalar_subquery() - keep.refused_max_rows
    gone += _deleted(session.execute(delete(_refused).where(_refused.c.id <= newest_dropped)))
    return gone


def _deleted(result: Any) -> int:
    return int(result.rowcount or 0)


class RefusedLog:
    """The bounded queue between the gate and the ledger, and the task that empties it."""

    def __init__(self, ctx: BillingContext, *, batch_delay_seconds: float = 0.2,
                 prune_every_seconds: float = 60.0) -> None:
        self._ctx = ctx
        self._queue: deque[Refusal] = deque()
        self._limit = ctx.config.records.refused_queue
        self._batch = ctx.config.records.refused_batch
        self._delay = batch_delay_seconds
        self._prune_every = prune_every_seconds
        self._pruned_at: float | None = None  # a monotonic clock reading (seconds), not money
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.dropped = 0

    def note(self, call: AuthorizeCall | None, verdict: Verdict, latency: float) -> None:
        """The gate's decision callback: a DENY is queued (no I/O); an ALLOW is nothing."""
        if verdict.allowed:
            return
        if len(self._queue) >= self._limit:
            self.dropped += 1
            return
        self._queue.append(refusal(call, verdict, latency, self._ctx.clock()))
        self._arrived.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="coobill.refused")

    async def stop(self) -> None:
        """Stop the writer and write what is still queued (best effort: a ledger that is
        down then loses them, and says how many)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        try:
            while self._queue:
                await self.flush()
        except Exception as exc:  # noqa: BLE001 - shutting down: say what is lost, go on
            log.warning("refused.lost count=%d error=%s", len(self._queue), type(exc).__name__)

    async def flush(self) -> int:
        """Write one batch of the queue now; how many."""
        batch = [self._queue.popleft() for _ in range(min(self._batch, len(self._queue)))]
        if not batch:
            return 0
        try:
            written = await self._ctx.uow.run(lambda s: record_refused(self._ctx, s, batch))
        except Exception:
            self._queue.extendleft(reversed(batch))  # kept for the next try, still bounded
            raise
        self.written += written
        return written

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._arrived.wait()
            await asyncio.sleep(self._delay)  # the gate answers first; the batch fills
            self._arrived.clear()
            try:
                while self._queue:
                    await self.flush()
                if self._pruned_at is None or loop.time() - self._pruned_at >= self._prune_every:
                    self._pruned_at = loop.time()
                    await self._ctx.uow.run(lambda s: prune_refused(self._ctx, s))
            except Exception as exc:  # noqa: BLE001 - the ledger unreachable or locked: again
                log.warning("refused.write_failed queued=%d error=%s", len(self._queue),
                            type(exc).__name__)
                await asyncio.sleep(1.0)
                self._arrived.set()


# --- reading them ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RefusedRecord:
    at: datetime
    extension: str
    number: str
    reason: str
    latency_ms: Decimal
    uniqueid: str


def _record(row: Any) -> RefusedRecord:
    return RefusedRecord(row.at, row.extension, row.number, row.reason,
                         (Decimal(row.latency_us) / 1000).quantize(Decimal("0.001")),
                         row.uniqueid)


def refused_query(first: datetime | None, last: datetime | None, keyword: str | None,
                  extensions: Sequence[str] = ()) -> Any:
    """The refusals within [first, last) (the records pages' period bounds), with the
    keyword in the extension or the number."""
    query = select(_refused)
    if first is not None:
        query = query.where(_refused.c.at >= first)
    if last is not None:
        query = query.where(_refused.c.at < last)
    if keyword:
        word = keyword.strip()
        query = query.where(_refused.c.extension.icontains(word, autoescape=True)
                            | _refused.c.number.icontains(word, autoescape=True))
    if extensions:
        query = query.where(_refused.c.extension.in_(list(extensions)))
    return query


async def list_refused(ctx: BillingContext, first: datetime | None = None,
                       last: datetime | None = None, keyword: str | None = None, *,
                       offset: int = 0, limit: int | None = None
                       ) -> tuple[list[RefusedRecord], int]:
    """Refused calls, newest first; (page, total)."""
    wanted = refused_query(first, last, keyword)
    async with ctx.uow.read() as uow:
        total = (await uow.session.execute(
            select(func.count()).select_from(wanted.subquery()))).scalar_one()
        page = wanted.order_by(_refused.c.at.desc(), _refused.c.id.desc()).offset(offset)
        if limit is not None:
            page = page.limit(limit)
        rows = (await uow.session.execute(page)).all()
    return [_record(r) for r in rows], int(total)


__all__ = [
    "Refusal",
    "RefusedLog",
    "RefusedRecord",
    "list_refused",
    "prune_refused",
    "record_refused",
    "refusal",
    "refused_query",
]
