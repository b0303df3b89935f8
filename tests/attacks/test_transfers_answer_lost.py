"""Transferred calls whose gated Dial was seen begin but whose answer fell into an AMI gap
(issue 13, item 11 with item 1): the DialEnd ANSWER and the bridge the caller and the
external leg entered are lost. The recording is lab-23.4.1-transfer; expected.json has the
truth: the whole time the external leg is answered, one record, and the hold lives until the
external leg hangs up.

Before: a blind transfer was settled at the transfer from the gated channel's own Dial Cdr
(4 s of 9: the leg, never seen answered, did not keep the channel open); an attended one took
the consultation bridge the caller entered for the answer and charged from there (the talk
before it lost), and charged the consultation call again as a Dial of its own."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from coobill.ami.calls import CallTracker, ChannelEnded, Received
from coobill.services.context import BillingContext
from coobill.services.settlement import settle_channel
from tests.attacks.test_transfers_unseen import BASE, EXPECTED, FRAMES, charged, funded
from tests.services.conftest import rows

LOST = 0.5  # seconds of frames lost from the gated DialEnd ANSWER on (its bridge is in it)


def replay(uid: str, token: str) -> tuple[list[tuple[float, ChannelEnded]], float]:
    """The recording, the gated channel authorized at its Newchannel, the frames from its
    DialEnd ANSWER for LOST seconds never delivered (then a new session lists the live
    channels). What ended for `uid`, with when; and when its external leg hung up."""
    now = [BASE]
    tracker = CallTracker(clock=lambda: now[0], cdr_events="on", cdr_grace_seconds=1.0)
    tracker.begin_session()
    tracker.connected()
    live: set[str] = set()
    ended: list[tuple[float, ChannelEnded]] = []
    lost_from: float | None = None
    external, external_hangup = "", 0.0
    for frame in FRAMES:
        now[0] = BASE + frame.t
        u = frame.get("Uniqueid")
        if frame.event == "Newchannel":
            live.add(u)
            if u == uid:
                tracker.authorized(uid, token)
        elif frame.event == "Hangup":
            live.discard(u)
            external_hangup = frame.t if u == external else external_hangup
        elif frame.event == "DialBegin" and u == uid:
            external = frame.get("DestUniqueid")
        elif frame.event == "DialEnd" and u == uid and lost_from is None:
            lost_from = frame.t
            tracker.disconnected()
        if lost_from is not None and lost_from >= 0:
            if frame.t < lost_from + LOST:
                continue
            tracker.begin_session()
            tracker.reconcile(set(live))
            tracker.connected()
            lost_from = -1.0
        out = tracker.feed(frame.as_event(), Received(now[0], now[0])) + tracker.expire(now[0])
        ended += [(frame.t, e) for e in out if e.uniqueid == uid]
    now[0] += 60
    ended += [(now[0] - BASE, e) for e in tracker.expire(now[0]) if e.uniqueid == uid]
    return ended, external_hangup


@pytest.mark.parametrize("name", ["blind", "blind_redirect", "attended"])
async def test_the_whole_external_leg_is_charged_once_it_hangs_up(
    ctx: BillingContext, name: str
) -> None:
    call: dict[str, Any] = EXPECTED["calls"][name]
    token = await funded(ctx, call)
    ended, external_hangup = replay(call["uniqueid"], token)
    [(settled_at, e)] = ended
    assert settled_at >= external_hangup, "settled while the external leg talked on"
    await settle_channel(ctx, e.settle)
    records = await rows(ctx, "SELECT leg, billable_seconds FROM call WHERE uniqueid = :u",
                         u=call["uniqueid"])
    assert len(records) == 1, f"one call, one record: {records}"
    assert await charged(ctx, call["uniqueid"]) == Decimal(call["expected_cost"]), records
