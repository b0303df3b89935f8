"""Transferred calls whose end the daemon missed, recovered from Master.csv (issue 13, items 3
and 11): cdr_csv writes the gated channel's rows when it hangs up (at the transfer) and the
external leg's - a blind transfer's own Dial of the target, an attended transfer's Local ;1
half bridged to it - when that leg hangs up. The recording is lab-23.4.1-transfer; the truth
is its expected.json: the whole time the external leg is answered, one record, the target
paying nothing; and the hold lives until the external leg hangs up."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from coobill.ami.calls import CallTracker, ChannelEnded, Received
from coobill.ami.cdr_store import find_in_master_csv
from coobill.daemon.pbx import PbxLink
from coobill.services.commands import SettleChannel
from coobill.services.context import BillingContext
from coobill.services.reservations import reconcile
from coobill.services.settlement import settle_channel
from tests.attacks.test_transfers_unseen import EXPECTED, FRAMES, charged, funded
from tests.services.conftest import rows

COLUMNS = ("AccountCode", "Source", "Destination", "DestinationContext", "CallerID", "Channel",
           "DestinationChannel", "LastApplication", "LastData", "StartTime", "AnswerTime",
           "EndTime", "Duration", "BillableSeconds", "Disposition", "AMAFlags", "UniqueID")


def master_csv(path: Path, until: float | None = None) -> Path:
    """Master.csv as cdr_csv writes it from the recording: a row for each Cdr Asterisk
    posted (by `until`), in order (loguniqueid = yes, local time)."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL)
        for frame in FRAMES:
            if frame.event == "Cdr" and (until is None or frame.t <= until):
                writer.writerow([frame.get(c) for c in COLUMNS])
    return path


def external_leg(uid: str) -> tuple[str, str, float]:
    """The gated Dial's leg: uniqueid, name, and when it hung up."""
    begin = next(f for f in FRAMES if f.event == "DialBegin" and f.get("Uniqueid") == uid)
    dest = begin.get("DestUniqueid")
    ended = next(f.t for f in FRAMES if f.event == "Hangup" and f.get("Uniqueid") == dest)
    return dest, begin.get("DestChannel"), ended


@pytest.mark.parametrize("name", list(EXPECTED["calls"]))
async def test_the_external_legs_rows_say_how_long_it_talked(
    ctx: BillingContext, tmp_path: Path, name: str
) -> None:
    """Settled from the file once the external leg hung up: the gated Dial's answer to the
    end of the gated channel's rows, and the leg's rows after it - not the gated channel's
    own Dial row alone, which ends at the transfer (4 s of 9, 3 s of 11), and not the
    attended transfer's consultation row as a second call. The rows' times are whole
    seconds and their billsecs truncated: a second can be lost at the transfer (10 s
    talked, 9 charged, in limit_after_blind), never more."""
    call: dict[str, Any] = EXPECTED["calls"][name]
    await funded(ctx, call)
    uid = call["uniqueid"]
    found = await find_in_master_csv(master_csv(tmp_path / "Master.csv"), [uid], gmt=False)
    await settle_channel(ctx, found[uid])
    records = await rows(ctx, "SELECT leg, billable_seconds FROM call WHERE uniqueid = :u", u=uid)
    assert len(records) == 1, records
    second = Decimal(EXPECTED["rate"]["rate"])
    lost = second if name == "limit_after_blind" else 0
    assert await charged(ctx, uid) == Decimal(call["expected_cost"]) - lost, records


@pytest.mark.parametrize("name", ["blind", "attended"])
async def test_a_restart_mid_transfer_follows_the_external_leg_to_its_end(
    ctx: BillingContext, tmp_path: Path, name: str
) -> None:
    """The daemon restarts after the transfer: the gated channel is gone, its leg still up.
    The reconcile keeps the hold and hands the channel over to be followed until the leg
    hangs up; then the file has the leg's rows, and the whole talk is charged."""
    call: dict[str, Any] = EXPECTED["calls"][name]
    token = await funded(ctx, call)
    uid = call["uniqueid"]
    dest, leg, leg_ended = external_leg(uid)
    gated_ended = next(f.t for f in FRAMES if f.event == "Hangup" and f.get("Uniqueid") == uid)
    path = tmp_path / "Master.csv"
    master_csv(path, until=gated_ended + 0.5)

    async def from_file(uniqueids: Any) -> Any:
        return await find_in_master_csv(path, uniqueids, gmt=False)

    done = await reconcile(ctx, {dest, leg}, asked_at=None, find_cdr=from_file)
    assert done.talking_on == {uid: [leg]}
    assert done.live == {uid: [token]}
    [(state,)] = await rows(ctx, "SELECT state FROM reservation WHERE uniqueid = :u", u=uid)
    assert state == "held"
    # The follower, restarted, follows the gone channel until its leg hangs up.
    now = [1796157000.0]
    tracker = CallTracker(clock=lambda: now[0], cdr_events="on", cdr_grace_seconds=1.0)
    tracker.begin_session()
    tracker.connected()
    tracker.expect(uid, [token], done.talking_on[uid])
    assert not tracker.expire(now[0] + 60)
    hangup = next(f for f in FRAMES if f.event == "Hangup" and f.get("Uniqueid") == dest)
    now[0] += leg_ended - gated_ended
    assert not tracker.feed(hangup.as_event(), Received(now[0], now[0]))
    [ended] = tracker.expire(now[0] + 1.0)
    assert ended.settle.leftover == "flag"  # what it cost is the CDR store's to say
    master_csv(path)
    found = await from_file([uid])
    await settle_channel(ctx, found[uid])
    assert await charged(ctx, uid) == Decimal(call["expected_cost"])


async def test_a_missed_end_waits_for_the_leg_the_pbx_still_lists(
    ctx: BillingContext, tmp_path: Path
) -> None:
    """The follower missed how a blind-transferred call went (its channel settled from its
    end alone, leftover "flag"): PbxLink looks in Master.csv, which so far has the gated
    channel's row up to the transfer. It asks the PBX first: the leg is listed live, so the
    channel is handed back to be followed until the leg hangs up - not settled at 4 s of 9
    with its hold released. Asked for together with the leg's own channel, the leg's row
    still counts for the gated channel once it is written."""
    call: dict[str, Any] = EXPECTED["calls"]["blind"]
    await funded(ctx, call)
    uid = call["uniqueid"]
    dest, leg, _ = external_leg(uid)
    gated_ended = next(f.t for f in FRAMES if f.event == "Hangup" and f.get("Uniqueid") == uid)
    path = master_csv(tmp_path / "Master.csv", until=gated_ended + 0.5)
    config = ctx.config.model_copy(update={"ami": ctx.config.ami.model_copy(
        update={"cdr_csv_path": str(path), "cdr_csv_gmt": False})})
    live = {dest, leg}
    followed: list[tuple[dict[str, list[str]], dict[str, list[str]], set[str]]] = []

    async def listed() -> set[str]:
        return set(live)

    link = PbxLink(dataclasses.replace(ctx, config=config), live_channels=listed,
                   on_expect=lambda holds, legs, gone: followed.append((holds, legs, gone)))
    lost = SettleChannel(uid, "500", "", (), leftover="flag", note="end missed")
    await link.call_ended(ChannelEnded(lost))
    await link.drain(10)
    assert followed == [({uid: []}, {uid: [leg]}, set())]
    [(state,)] = await rows(ctx, "SELECT state FROM reservation WHERE uniqueid = :u", u=uid)
    assert state == "held"
    live.clear()
    master_csv(path)
    # The tracker hands it back once the leg hung up and the Cdr grace passed.
    await asyncio.gather(link.call_ended(ChannelEnded(lost, legs_awaited=True)), link.call_ended(
        ChannelEnded(SettleChannel(dest, "", "", (), leftover="flag"), legs_awaited=True)))
    await link.drain(10)
    assert await charged(ctx, uid) == Decimal(call["expected_cost"])


@pytest.mark.parametrize("met_by", ["missed_end", "reconcile"])
async def test_a_gone_channel_whose_leg_just_hung_up_waits_for_its_rows(
    ctx: BillingContext, tmp_path: Path, met_by: str
) -> None:
    """The leg is no longer listed, but it hung up a moment ago: the CDR engine writes the
    row of its end (how long it talked on after the transfer) after the channel left the
    PBX's list, so the file read now lacks it. Whether the follower missed the channel's end
    or a reconcile (a live check, a login after a gap) finds it gone, it is not settled from
    the rows up to the transfer (4 s of 9): its hold is kept and it is handed back, over, to
    the tracker, which settles it once the Cdr grace has passed - by then the row is in."""
    call: dict[str, Any] = EXPECTED["calls"]["blind"]
    token = await funded(ctx, call)
    uid = call["uniqueid"]
    _, leg, _ = external_leg(uid)
    gated_ended = next(f.t for f in FRAMES if f.event == "Hangup" and f.get("Uniqueid") == uid)
    path = master_csv(tmp_path / "Master.csv", until=gated_ended + 0.5)
    config = ctx.config.model_copy(update={"ami": ctx.config.ami.model_copy(
        update={"cdr_csv_path": str(path), "cdr_csv_gmt": False})})
    now = [1_000.0]
    tracker = CallTracker(clock=lambda: now[0], cdr_events="on", cdr_grace_seconds=1.0)
    tracker.begin_session()
    tracker.connected()
    followed: list[tuple[dict[str, list[str]], dict[str, list[str]], set[str]]] = []

    async def listed() -> set[str]:
        return set()  # the leg has left the PBX's list; its row is not written yet

    def expect(holds: dict[str, list[str]], legs: dict[str, list[str]], gone: set[str]) -> None:
        followed.append((holds, legs, gone))
        for uniqueid, tokens in holds.items():
            tracker.expect(uniqueid, tokens, legs.get(uniqueid, ()), gone=uniqueid in gone)

    link = PbxLink(dataclasses.replace(ctx, config=config), live_channels=listed,
                   on_expect=expect)
    if met_by == "reconcile":
        await link.reconciled(set(), still_live=listed)
        assert followed == [({uid: [token]}, {uid: [leg]}, {uid})]
    else:
        await link.call_ended(ChannelEnded(
            SettleChannel(uid, "500", "", (), leftover="flag", note="end missed")))
        await link.drain(10)
    [(state,)] = await rows(ctx, "SELECT state FROM reservation WHERE uniqueid = :u", u=uid)
    assert state == "held"  # not settled at the rows up to the transfer
    assert not tracker.expire(now[0] + 0.5)
    master_csv(path)  # the leg's row is written
    ended = tracker.expire(now[0] + 1.0)
    assert [e.legs_awaited for e in ended] == [True]
    await link.call_ended(ended[0])
    await link.drain(10)
    assert await charged(ctx, uid) == Decimal(call["expected_cost"])


async def test_a_reconcile_without_a_follower_settles_from_the_file_at_once(
    ctx: BillingContext, tmp_path: Path
) -> None:
    """No one follows channels (a reconcile asked for by itself): the file's rows settle the
    call at once, as they stand."""
    call: dict[str, Any] = EXPECTED["calls"]["blind"]
    await funded(ctx, call)
    uid = call["uniqueid"]
    path = master_csv(tmp_path / "Master.csv")

    async def from_file(uniqueids: Any) -> Any:
        return await find_in_master_csv(path, uniqueids, gmt=False)

    done = await reconcile(ctx, set(), asked_at=None, find_cdr=from_file)
    assert done.settled == [uid]
    assert not done.rows_awaited
    assert await charged(ctx, uid) == Decimal(call["expected_cost"])
