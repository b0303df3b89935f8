"""cdr_csv's Master.csv as evidence: every row of a channel, its GMT times, the answered Dial
billed - never the first row blindly."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from coobill.ami.calls import CallTracker
from coobill.ami.cdr import CdrRecord, talk_through_a_transfer
from coobill.ami.cdr_store import MasterCsv, find_in_master_csv, read_master_csv
from coobill.money import ZERO
from coobill.services.commands import DialOutcome, Disposition
from coobill.services.context import BillingContext
from coobill.services.settlement import settle_channel
from coobill.storage.tables import Call

UID = "1795610072.0"


def row(dst_channel: str, lastapp: str, answer: str, billsec: int, disposition: str,
        uniqueid: str = UID) -> str:
    return (f'"","100","9138000001","sipphones","""Alice"" <100>","PJSIP/100-00000000",'
            f'"{dst_channel}","{lastapp}","x","2026-11-25 12:34:32","{answer}",'
            f'"2026-11-25 12:35:10",38,{billsec},"{disposition}","DOCUMENTATION","{uniqueid}"\n')


FAILOVER = (row("PJSIP/carrier-b-00000005", "Dial", "", 0, "BUSY")
            + row("PJSIP/carrier-a-00000006", "Dial", "2026-11-25 12:34:40", 30, "ANSWERED")
            + row("", "Hangup", "", 0, "NO ANSWER", uniqueid="other"))


async def test_a_failover_is_settled_from_its_answered_row_whatever_the_order(
    tmp_path: Path,
) -> None:
    master = tmp_path / "Master.csv"
    master.write_text(FAILOVER)
    found = await find_in_master_csv(master, [UID, "absent"], gmt=True)
    assert list(found) == [UID]
    [record] = found[UID].records()
    assert (record.disposition, record.billable_seconds, record.trunk) == (
        Disposition.ANSWERED, 30, "carrier-a")
    assert record.answer == datetime(2026, 11, 25, 12, 34, 40, tzinfo=UTC)  # usegmtime = yes
    assert found[UID].leftover == "release"  # the store holds every record of the channel


def test_local_times_stay_naive_when_cdr_csv_writes_local_time(tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    master.write_text(FAILOVER)
    [busy, answered] = read_master_csv(master, [UID], gmt=False)[UID].own
    assert busy.answer is None
    assert answered.answer == datetime(2026, 11, 25, 12, 34, 40)


async def test_rows_without_a_dial_release_what_the_channel_held(tmp_path: Path) -> None:
    """The caller was allowed, then hung up during an announcement: Asterisk's record shows
    no Dial, and that is evidence enough to give the hold back."""
    master = tmp_path / "Master.csv"
    master.write_text(row("", "Playback", "2026-11-25 12:34:33", 5, "ANSWERED"))
    found = await find_in_master_csv(master, [UID], gmt=True)
    assert (found[UID].dials, found[UID].leftover) == ((), "release")


async def test_an_unreadable_store_is_no_evidence(tmp_path: Path) -> None:
    assert await find_in_master_csv(tmp_path / "absent.csv", [UID], gmt=True) == {}


async def test_a_congested_dial_settles_alike_from_master_csv_and_from_a_cdr_event(
    tmp_path: Path, ctx: BillingContext
) -> None:
    """One disposition table (ami/cdr.py) reads both: CONGESTION is FAILED either way, and the
    two settlements record the same call at the same cost."""
    master = tmp_path / "Master.csv"
    master.write_text(row("PJSIP/carrier-a-00000006", "Dial", "", 0, "CONGESTION"))
    from_store = (await find_in_master_csv(master, [UID], gmt=False))[UID]
    tracker = CallTracker(clock=lambda: 1795610072.0, cdr_events="on")
    assert tracker.feed({
        "Event": "Cdr", "Source": "100", "Destination": "9138000001",
        "CallerID": '"Alice" <100>', "Channel": "PJSIP/100-00000000",
        "DestinationChannel": "PJSIP/carrier-a-00000006", "LastApplication": "Dial",
        "StartTime": "2026-11-25 12:34:32", "AnswerTime": "", "EndTime": "2026-11-25 12:35:10",
        "BillableSeconds": "0", "Disposition": "CONGESTION", "UniqueID": "1795610072.1",
    }) == []
    [from_event] = tracker.expire(tracker.tick() + 5)

    def seen(dial: DialOutcome) -> tuple[object, ...]:
        return (dial.disposition, dial.billable_seconds, dial.leg, dial.dialled_number,
                dial.trunk, dial.start, dial.end)

    assert [seen(d) for d in from_store.dials] == [seen(d) for d in from_event.settle.dials]
    assert from_store.dials[0].disposition == Disposition.FAILED
    settled = [await settle_channel(ctx, from_store), await settle_channel(ctx, from_event.settle)]
    assert [[s.cost for s in each] for each in settled] == [[ZERO], [ZERO]]
    async with ctx.uow() as uow:
        calls = (await uow.session.execute(
            select(Call.uniqueid, Call.disposition, Call.billable_seconds, Call.cost)
            .order_by(Call.uniqueid))).all()
    assert [tuple(c)[1:] for c in calls] == [("FAILED", 0, ZERO), ("FAILED", 0, ZERO)]


async def test_lookups_asked_together_share_one_read_of_the_file(tmp_path: Path) -> None:
    """Channels that end unseen together (a reconnect, a burst of flagged settlements) cost
    one read of the PBX's whole history, not one each."""
    master = tmp_path / "Master.csv"
    master.write_text(FAILOVER + row("PJSIP/carrier-a-00000007", "Dial", "", 0, "BUSY",
                                     uniqueid="1795610072.5"))
    store = MasterCsv(master, gmt=True)
    found = await asyncio.gather(store.find([UID]), store.find(["1795610072.5"]),
                                 store.find(["absent"]))
    assert [list(f) for f in found] == [[UID], ["1795610072.5"], []]
    assert store.reads == 1
    await store.find([UID])
    assert store.reads == 2  # a lookup after that reads the file as it is now


class TestTalkThroughATransfer:
    """ami/cdr.py talk_through_a_transfer, which both the Cdr events and Master.csv bill a
    transferred call by."""

    @staticmethod
    def row(start: int, end: int) -> CdrRecord:
        at = datetime(2026, 11, 22, 14, 0, 0)  # the CDRs' own zone-less clock
        return CdrRecord("1.11", "100", "201", "", "PJSIP/carrier-a-00000001", "", at
                         + timedelta(seconds=start), at + timedelta(seconds=start),
                         at + timedelta(seconds=end), end - start, Disposition.ANSWERED)

    def test_the_rows_after_the_transfer_add_their_billsec(self) -> None:
        answer = datetime(2026, 11, 22, 14, 0, 1)
        own_end = datetime(2026, 11, 22, 14, 0, 11)
        assert talk_through_a_transfer(answer, own_end, [self.row(11, 20)]) == 10 + 9

    def test_overlapping_rows_are_not_counted_twice(self) -> None:
        # found by a review: two rows of one bridge of several parties, each 9 s
        answer = datetime(2026, 11, 22, 14, 0, 1)
        own_end = datetime(2026, 11, 22, 14, 0, 11)
        assert talk_through_a_transfer(answer, own_end, [self.row(11, 20), self.row(11, 20)]) \
            == 19  # the answer to the rows' end, not 10 + 9 + 9
