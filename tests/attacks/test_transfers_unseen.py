"""Attacks on transfers whose gated Dial the daemon did not see begin (issue 13, item 11 with
items 1 and 6): an AMI gap while the call was dialled and answered, or a restart of the
daemon mid-call. The recording is lab-23.4.1-transfer; expected.json has the truth: the whole
time the external leg is answered is charged, at the authorization's tariff, as one record,
and the hold lives until the external leg hangs up."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from coobill.ami.calls import CallTracker, ChannelEnded, Received
from coobill.ami.cdr import CdrRecord
from coobill.ami.cdr_store import channel_from_records
from coobill.services.commands import AuthorizeCall
from coobill.services.context import BillingContext
from coobill.services.gate import authorize_call
from coobill.services.reservations import reconcile
from coobill.services.settlement import settle_channel
from tests.fakes.ami_server import TRANSFER, read_trace
from tests.services.conftest import make_extension, make_rate, rows

EXPECTED: dict[str, Any] = json.loads((TRANSFER / "expected.json").read_text())
FRAMES = [f for f in read_trace(TRANSFER / "ami-all.txt") if not f.sent]
BASE = 1796157000.0  # any epoch: the tracker only compares these times with each other
GAP = 1.5  # seconds of frames lost from the gated DialBegin on (its DialEnd ANSWER is in it)


async def funded(ctx: BillingContext, call: dict[str, Any]) -> str:
    """The expected.json rate; a balance that buys exactly the recorded limit; the gate's
    ALLOW for the gated channel. Returns the hold's token."""
    rate = EXPECTED["rate"]
    await make_rate(ctx, rate["prefix"], initial_cost=rate["initial_cost"],
                    initial_time=rate["initial_time"], rate=rate["rate"], period=rate["period"])
    limit = call["limit_seconds"]
    balance = Decimal(rate["initial_cost"]) + Decimal(rate["rate"]) * (limit - rate["initial_time"])
    await make_extension(ctx, call["caller"], balance=str(balance))
    number = "9138000" + call["caller"]
    verdict = await authorize_call(ctx, AuthorizeCall(call["uniqueid"], call["caller"], number,
                                                      channel="Local/x;2"))
    assert verdict.allowed
    assert verdict.limit_seconds == limit
    assert verdict.token
    return verdict.token


def replay(uid: str, token: str, *, gap: bool,
           grace: float = 5.0) -> tuple[list[tuple[float, ChannelEnded]], float]:
    """Feed the whole recording (gated channel authorized at its Newchannel; with `gap`, the
    frames from its DialBegin for GAP seconds lost, then a new session that lists the live
    channels). Returns what ended for `uid`, with when, and when its external leg hung up."""
    now = [BASE]
    tracker = CallTracker(clock=lambda: now[0], cdr_events="on", cdr_grace_seconds=grace)
    tracker.begin_session()
    tracker.connected()
    live: set[str] = set()
    ended: list[tuple[float, ChannelEnded]] = []
    gap_from: float | None = None
    external: str | None = None
    external_hangup = 0.0
    for frame in FRAMES:
        while now[0] + 0.25 < BASE + frame.t:  # the follower's ticker, between frames
            now[0] += 0.25
            ended += [(now[0] - BASE, e) for e in tracker.expire(now[0]) if e.uniqueid == uid]
        now[0] = BASE + frame.t
        u = frame.get("Uniqueid")
        if frame.event == "Newchannel":
            live.add(u)
            if u == uid:
                tracker.authorized(uid, token)
        if frame.event == "Hangup":
            live.discard(u)
            if u == external:
                external_hangup = frame.t
        if frame.event == "DialBegin" and u == uid:
            external = frame.get("DestUniqueid")
            if gap and gap_from is None:
                gap_from = frame.t
                tracker.disconnected()
        if gap_from is not None and gap_from >= 0:
            if frame.t < gap_from + GAP:
                continue
            tracker.begin_session()
            tracker.reconcile(set(live))
            tracker.connected()
            gap_from = -1.0
        out = tracker.feed(frame.as_event(), Received(now[0], now[0])) + tracker.expire(now[0])
        ended += [(frame.t, e) for e in out if e.uniqueid == uid]
    now[0] += 60
    ended += [(now[0] - BASE, e) for e in tracker.expire(now[0]) if e.uniqueid == uid]
    return ended, external_hangup


async def charged(ctx: BillingContext, uid: str) -> Decimal:
    found = await rows(ctx, "SELECT cost FROM call WHERE uniqueid = :u", u=uid)
    return sum((Decimal(int(c)) / 10000 for (c,) in found), Decimal(0))


@pytest.mark.parametrize("name", ["blind", "blind_redirect", "attended"])
class TestAGapOverTheGatedDialBegin:
    async def test_the_whole_external_leg_is_charged(self, ctx: BillingContext,
                                                     name: str) -> None:
        """Without the DialBegin the tracker has no leg to follow: the channel is settled from
        its own Cdrs alone (CallTracker._dials, "known from its Cdrs alone"), which end at the
        transfer - 4 s of 9 (blind), 3 s of 11 (attended) - and, for the attended transfer,
        the consultation call to the internal target (a second ANSWERED Dial Cdr on the gated
        uniqueid) is charged at the outbound tariff as a second call."""
        call = EXPECTED["calls"][name]
        token = await funded(ctx, call)
        ended, _ = replay(call["uniqueid"], token, gap=True)
        for _, e in ended:
            await settle_channel(ctx, e.settle)
        records = await rows(ctx, "SELECT leg, billable_seconds, cost FROM call "
                             "WHERE uniqueid = :u", u=call["uniqueid"])
        assert await charged(ctx, call["uniqueid"]) == Decimal(call["expected_cost"]), records
        assert len(records) == 1, f"one call, one record: {records}"

    async def test_the_hold_outlives_the_gated_channel(self, ctx: BillingContext,
                                                       name: str) -> None:
        """The hold must live until the external leg hangs up; here the channel is settled
        (and its hold released) once the gated channel hung up, at the transfer, and the Cdr
        grace ran out (1 s here; the recording's external legs talk only 5 s on)."""
        call = EXPECTED["calls"][name]
        token = await funded(ctx, call)
        ended, external_hangup = replay(call["uniqueid"], token, gap=True, grace=1.0)
        assert ended, "never settled"
        settled_at = ended[0][0]
        assert settled_at >= external_hangup, (
            f"settled at t={settled_at:.2f}, the external leg talked on until "
            f"t={external_hangup:.2f}")


class TestWhatHoldsUpWhenEverythingIsSeen:
    """The control (it holds): the same recording without a gap is charged as expected.json
    says, as one record per call."""

    @pytest.mark.parametrize("name", list(EXPECTED["calls"]))
    async def test_each_transfer_is_charged_its_external_leg(self, ctx: BillingContext,
                                                             name: str) -> None:
        call = EXPECTED["calls"][name]
        token = await funded(ctx, call)
        ended, external_hangup = replay(call["uniqueid"], token, gap=False)
        [(settled_at, e)] = ended
        assert settled_at >= external_hangup
        await settle_channel(ctx, e.settle)
        assert await charged(ctx, call["uniqueid"]) == Decimal(call["expected_cost"])
        [(reserved,)] = await rows(ctx, "SELECT reserved FROM extension WHERE number = :n",
                                   n=call["caller"])
        assert reserved == 0


class TestARestartDuringATransferredCall:
    async def test_master_csv_does_not_release_a_hold_whose_external_leg_talks(
        self, ctx: BillingContext
    ) -> None:
        """The daemon restarts after the blind transfer: the gated channel is gone, the
        external leg still talks (it is in CoreShowChannels). reservations.reconcile looks only
        at the hold's own uniqueid, finds it gone, and settles it from Master.csv's rows of
        the gated channel - the Dial row that ends at the transfer: 4 s of 9 charged, the
        hold released while the external leg still talks (and the 5 s after are free)."""
        call = EXPECTED["calls"]["blind"]
        await funded(ctx, call)
        uid = call["uniqueid"]
        cdrs = [CdrRecord.from_event({k.lower(): v for k, v in f.as_event().items()
                                      if isinstance(v, str)})
                for f in FRAMES if f.event == "Cdr" and f.get("UniqueID") == uid]
        transfer_t = next(f.t for f in FRAMES if f.event == "Hangup" and f.get("Uniqueid") == uid)
        external = next(f.get("DestUniqueid") for f in FRAMES
                        if f.event == "DialBegin" and f.get("Uniqueid") == uid)
        live = {f.get("Uniqueid") for f in FRAMES if f.event == "Newchannel" and f.t <= transfer_t}
        live -= {f.get("Uniqueid") for f in FRAMES if f.event == "Hangup" and f.t <= transfer_t}
        assert external in live
        assert uid not in live
        # CoreShowChannels lists each live channel's name too (AmiConnection.live_uniqueids).
        live |= {f.get("Channel") for f in FRAMES if f.event == "Newchannel"
                 and f.get("Uniqueid") in live}

        async def master_csv(uniqueids: object) -> dict[str, object]:
            return {uid: channel_from_records(uid, cdrs)} if uid in uniqueids else {}  # type: ignore[operator]

        done = await reconcile(ctx, live, asked_at=None, find_cdr=master_csv)  # type: ignore[arg-type]
        [(state,)] = await rows(ctx, "SELECT state FROM reservation WHERE uniqueid = :u", u=uid)
        assert state in ("held", "flagged"), (
            f"hold {state} ({done}) while the external leg {external} still talks; charged "
            f"{await charged(ctx, uid)} so far, expected {call['expected_cost']} in the end")
