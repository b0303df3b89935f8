"""Asterisk's CDR store as evidence: cdr_csv's Master.csv, read when a channel's end was missed.

Every row of each channel asked for is kept (a channel that dialled twice, or failed over from
a busy target to one that answered, has several Dial rows under one uniqueid: the first is not
necessarily the answered one). The file is read once per lookup, on a worker thread (it is the
whole history of the PBX; the event loop must not wait on it).
"""

from __future__ import annotations

import asyncio
import csv
import logging
from collections import defaultdict
from collections.abc import Collection
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


async def find_in_master_csv(
    path: Path, uniqueids: Collection[str], *, gmt: bool
) -> dict[str, SettleChannel]:
    """Each channel with rows in Master.csv, as a SettleChannel."""
    rows = await asyncio.to_thread(read_master_csv, path, uniqueids, gmt=gmt)
    return {uid: channel_from_records(uid, records) for uid, records in rows.items()}
