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
import dataclasses
import logging
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from coobill.ami.cdr import CdrRecord, dials_of, parse_callerid, talk_through_a_transfer
from coobill.services.commands import DialOutcome, Disposition, SettleChannel

log = logging.getLogger("coobill.settlement")


@dataclass(slots=True)
class _Rows:
    """A channel's own rows, and the rows written after them for the channels its Dials
    reached (by name): a transferred external leg's own Dial (a blind transfer's), or the
    row of the channel it was bridged to (an attended transfer's Local ;1 half), written
    when that leg hung up."""

    own: list[CdrRecord] = field(default_factory=list)
    beyond: list[CdrRecord] = field(default_factory=list)


def read_master_csv(path: Path, uniqueids: Collection[str], *, gmt: bool) -> dict[str, _Rows]:
    """The rows of these channels, by uniqueid, in the file's order (the order cdr_csv
    wrote them in), each with the rows of its legs written after its own."""
    wanted = set(uniqueids)
    found: dict[str, _Rows] = defaultdict(_Rows)
    legs: dict[str, set[str]] = defaultdict(set)  # a leg's name -> the channels it was dialled by
    try:
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            for row in csv.reader(handle):
                record = CdrRecord.from_master_csv(row, gmt=gmt)
                if record is None:
                    continue
                # A row can be both: the blind-transferred leg's own Dial, asked for too.
                owners = (legs.get(record.channel, set())
                          | legs.get(record.destination_channel, set()))
                for owner in owners - {record.uniqueid}:
                    found[owner].beyond.append(record)
                if record.uniqueid in wanted:
                    found[record.uniqueid].own.append(record)
                    if record.destination_channel:
                        legs[record.destination_channel].add(record.uniqueid)
    except OSError as exc:
        log.warning("settlement.cdr_store_unreadable path=%s error=%s", path, exc)
    return {uid: rows for uid, rows in found.items() if rows.own}


def channel_from_records(uniqueid: str, records: list[CdrRecord],
                         beyond: list[CdrRecord] | None = None) -> SettleChannel:
    """What Asterisk's records of one channel say: its Dials; and since the store holds every
    record of the channel, an authorization none of them went out under cost nothing.

    An answered Dial whose leg has rows beyond the channel's own (it was transferred) talked
    from its answer to the end of the channel's last row, and then as long as those rows
    say (their billsec: Asterisk's own measure, where the rows' times are whole seconds).
    The channel's Dials that started once that Dial's own row ended are the transfer's (an
    attended transfer's consultation), no calls of their own."""
    first = records[0]
    name, number = parse_callerid(first.callerid)
    own_end = max((r.end for r in records if r.end is not None), default=None)
    dials: list[DialOutcome] = []
    went_on: datetime | None = None
    for found in dials_of(records):
        dial = found
        if went_on is not None and dial.start is not None and dial.start >= went_on:
            continue
        later = [r for r in beyond or () if r.end is not None and r.start is not None
                 and dial.end is not None and r.start >= dial.end
                 and dial.leg in (r.destination_channel, r.channel)]
        if dial.disposition == Disposition.ANSWERED and dial.answer is not None \
                and own_end is not None and later:
            talk = talk_through_a_transfer(dial.answer, own_end, later)
            went_on = dial.end
            dial = dataclasses.replace(dial, end=max(r.end for r in later if r.end),
                                       billable_seconds=max(talk, dial.billable_seconds))
        dials.append(dial)
    return SettleChannel(
        uniqueid=uniqueid, caller_extension=first.source or number, caller_name=name,
        dials=tuple(dials), leftover="release",
    )


@dataclass(slots=True)
class _Batch:
    uniqueids: set[str] = field(default_factory=set)
    rows: dict[str, _Rows] | None = None


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
        return {uid: channel_from_records(uid, rows[uid].own, rows[uid].beyond)
                for uid in wanted if uid in rows}


async def find_in_master_csv(
    path: Path, uniqueids: Collection[str], *, gmt: bool
) -> dict[str, SettleChannel]:
    """Each channel with rows in Master.csv, as a SettleChannel (one read of its own)."""
    return await MasterCsv(path, gmt=gmt).find(uniqueids)
