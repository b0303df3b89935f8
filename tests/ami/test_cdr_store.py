"""cdr_csv's Master.csv as evidence: every row of a channel, its GMT times, the answered Dial
billed - never the first row blindly."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from coobill.ami.cdr_store import find_in_master_csv, read_master_csv
from coobill.services.commands import Disposition

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
    [busy, answered] = read_master_csv(master, [UID], gmt=False)[UID]
    assert busy.answer is None and answered.answer == datetime(2026, 11, 25, 12, 34, 40)


async def test_rows_without_a_dial_release_what_the_channel_held(tmp_path: Path) -> None:
    """The caller was allowed, then hung up during an announcement: Asterisk's record shows
    no Dial, and that is evidence enough to give the hold back."""
    master = tmp_path / "Master.csv"
    master.write_text(row("", "Playback", "2026-11-25 12:34:33", 5, "ANSWERED"))
    found = await find_in_master_csv(master, [UID], gmt=True)
    assert (found[UID].dials, found[UID].leftover) == ((), "release")


async def test_an_unreadable_store_is_no_evidence(tmp_path: Path) -> None:
    assert await find_in_master_csv(tmp_path / "absent.csv", [UID], gmt=True) == {}
