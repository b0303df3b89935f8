"""Asterisk's CDR store as evidence: cdr_csv's Master.csv, read when a channel's end was missed.

Every row of each channel asked for is kept (a channel that dialled twice, or failed over from
a busy target to one that answered, has several Dial rows under one uniqueid: the first is not
necessarily the answered one). The file is the whole history of the PBX: it is read on a
worker thread (the event loop must not wait on it), and `MasterCsv` reads it once for every
lookup asked meanwhile (a reconcile asks for all its orphaned holds at once; channels that end
unseen while a read is under way share the next one), never once per channel.
"""

from __future__ import annotations

import asyncio
import csv
import logging
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from coobill.ami.cdr import CdrRecord, dials_of, parse_callerid
from coobill.services.commands import SettleChannel

log = logging.getLogger("coobill.settlement")


def read_master_csv(path: Path, uniqueids: Collection[str], *, gmt: bool) -> dict[str, list[CdrRecord]]:
    """The rows of these channels, by uniqueid, in the file's order."""
    wanted = set(uniqueids)
    found: dict[str, list[CdrRecord]] = defaultdict(list)
    try:
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            for row in csv.reader(handle):
                record = CdrRecord.from_master_csv(row, gmt=gmt)
                if record is not None and record.uniqueid in wanted:
                    found[record.uniqueid].append(record)
    except OSError as exc:
        log.warning("settlement.cdr_store_unreadable path=%s error=%s", path, exc)
    return dict(found)


def channel_from_records(uniqueid: str, records: list[CdrRecord]) -> SettleChannel:
    """What Asterisk's records of one channel say: its Dials; and since the store holds every
    record of the channel, an authorization none of them went out under cost nothing."""
    first = records[0]
    name, number = parse_callerid(first.callerid)
    return SettleChannel(
        uniqueid=uniqueid, caller_extension=first.source or number, caller_name=name,
        dials=dials_of(records), leftover="release",
    )


@dataclass(slots=True)
class _Batch:
    uniqueids: set[str] = field(default_factory=set)
    rows: dict[str, list[CdrRecord]] | None = None


class MasterCsv:
    """Asterisk's Master.csv, looked up by uniqueid; lookups asked together share one read."""

    def __init__(self, path: Path, *, gmt: bool) -> None:
        self.path, self.gmt = path, gmt
        self.reads = 0
        self._next = _Batch()
        self._reading = asyncio.Lock()

    async def find(self, uniqueids: Collection[str]) -> dict[str, SettleChannel]:
        """Each of these channels with rows in the file, as a SettleChannel."""
        wanted = set(uniqueids)
        if not wanted:
            return {}
        batch = self._next
        batch.uniqueids |= wanted
        # One turn of the loop before the batch is closed: lookups asked at the same moment
        # (a reconcile's settlements handed over together) join it.
        await asyncio.sleep(0)
        async with self._reading:
            # The first waiter to get here reads for the whole batch (also for a batch whose
            # reader was cancelled); the others find its rows.
            if batch.rows is None:
                if batch is self._next:
                    self._next = _Batch()
                self.reads += 1
                batch.rows = await asyncio.to_thread(read_master_csv, self.path,
                                                     set(batch.uniqueids), gmt=self.gmt)
        rows = batch.rows
        return {uid: channel_from_records(uid, rows[uid]) for uid in wanted if uid in rows}


async def find_in_master_csv(
    path: Path, uniqueids: Collection[str], *, gmt: bool
) -> dict[str, SettleChannel]:
    """Each channel with rows in Master.csv, as a SettleChannel (one read of its own)."""
    return await MasterCsv(path, gmt=gmt).find(uniqueids)
