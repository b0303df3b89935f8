"""Settlement: calls settled per second from a replayed AMI event stream, and hangup-to-debit
latency with 200 live calls, on SQLite.

The stream is the recorded pjsip answered call (every call-class frame an AMI user with
read=call,cdr receives, Cdr included) cloned with fresh uniqueids; it goes through a fake
Asterisk manager over loopback, panoramisk, the call tracker and the ledger — the daemon's
whole settlement path. Every call was authorized first, so each settlement releases a hold
and debits the ledger.

`outbox=True`: the webhook outbox on, as a daemon with `[webhooks] urls` runs it - each
settlement writes its `call.settled` event in its transaction, and the daemon's sender
(daemon/webhooks.py) delivers them meanwhile, in this process's event loop as in the
daemon's, to a receiver in a process of its own (bench/webhook_receiver.py) answering 204.
Nudged by every settlement, it paces itself to about a tenth of the time while calls settle
faster than the loop keeps up with (as here: the stream is replayed at full speed), so most
events go out after the burst (`webhooks_delivered_during_run` says how many did
not wait)."""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.fakes.ami_server import PJSIP, FakeAmiServer, Frame, event_frames, read_trace

from coobill.ami.follower import AmiFollower, FollowerOptions
from coobill.bootstrap import bootstrap
from coobill.config import Settings
from coobill.daemon.call_index import CallIndexer
from coobill.daemon.pbx import PbxLink
from coobill.daemon.webhooks import WebhookSender
from coobill.services import outbox as webhook_outbox
from coobill.services.balances import recharge
from coobill.services.commands import AuthorizeCall
from coobill.services.extensions import ExtensionChanges, set_extension
from coobill.services.gate import authorize_call
from coobill.services.rate_fields import check_rate_fields
from coobill.services.rates import add_rate
from coobill.storage import schema

ALICE, CARRIER = "1795610072.0", "1795610072.1"


def call_template() -> list[Frame]:
    frames = event_frames(read_trace(PJSIP / "ami-all.txt"))
    mine = [f for f in frames
            if {f.get("Uniqueid"), f.get("UniqueID"), f.get("DestUniqueid")} & {ALICE, CARRIER}]
    return [f for f in mine if not f.get("Privilege").startswith("dialplan")]


def clone(template: list[Frame], n: int) -> tuple[str, str, list[Frame]]:
    uid, dest = f"2000000000.{2 * n}", f"2000000000.{2 * n + 1}"
    ext = str(100 + n % 100)
    swaps = {ALICE: uid, CARRIER: dest, "PJSIP/100-00000000": f"PJSIP/{ext}-{n:08x}",
             "PJSIP/carrier-a-00000001": f"PJSIP/carrier-a-{n + 1 << 20:08x}"}

    def swap(value: str) -> str:
        for old, new in swaps.items():
            value = value.replace(old, new)
        return value.replace('"Alice" <100>', f'"Ext {ext}" <{ext}>')

    out = []
    for f in template:
        headers = tuple((k, ext if k in ("CallerIDNum", "Source") and v == "100" else swap(v))
                        for k, v in f.headers)
        out.append(Frame(headers, f.t))
    return uid, ext, out


def outbox_settings(url: str) -> dict[str, object]:
    """The webhook outbox enabled, delivering to `url` (the daemon's defaults otherwise)."""
    return {"urls": [url], "secret": "bench-webhook-secret"}


def start_receiver() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "bench.webhook_receiver"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, f"http://127.0.0.1:{int(proc.stdout.readline())}/hook"


async def setup(calls: int, hook_url: str | None = None):  # type: ignore[no-untyped-def]
    tmp = tempfile.mkdtemp()
    hooks = outbox_settings(hook_url) if hook_url else {}
    ctx = bootstrap(Settings(database={"url": f"sqlite+aiosqlite:///{Path(tmp) / 'settle.db'}"},
                             ami={"cdr_events": "on"}, webhooks=hooks))
    await schema.upgrade(ctx.uow.engine)
    for ext in range(100, 200):
        await set_extension(ctx, str(ext), ExtensionChanges(billing=True))
    await recharge(ctx, [str(e) for e in range(100, 200)], "100000")
    await add_rate(ctx, check_rate_fields(prefix="9", number_length=0, initial_cost="0.1",
                                          initial_seconds=60, rate="0.05", period_seconds=60,
                                          extensions="*"))
    template = call_template()
    streams = []
    for n in range(calls):
        uid, ext, frames = clone(template, n)
        await authorize_call(ctx, AuthorizeCall(uid, ext, "9138000001"))
        streams.append((uid, frames))
    return ctx, streams


async def run(calls: int, live: int, hook_url: str | None = None) -> dict[str, float]:
    ctx, streams = await setup(calls + live, hook_url)
    settled_at: dict[str, float] = {}
    done = asyncio.Event()
    wanted = calls
    delivered = 0

    def one_delivered() -> None:
        nonlocal delivered
        delivered += 1

    # As the daemon runs them: started with the link, nudged by each settlement batch.
    sender = WebhookSender(ctx, on_delivered=one_delivered) if hook_url else None
    indexer = CallIndexer(ctx)  # the records into SQLite's keyword index (migration 0010)

    def settled(settlements) -> None:  # type: ignore[no-untyped-def]
        for settlement in settlements:
            settled_at[settlement.uniqueid] = time.perf_counter()
        if len(settled_at) >= wanted:
            done.set()
        if sender is not None:
            sender.nudge()
        indexer.nudge()

    if sender is not None:
        sender.start()
    indexer.start()
    link = PbxLink(ctx, on_settled=settled)
    ended = link.call_ended

    async def reconciled(_live: set[str]) -> None:
        return None

    server = await FakeAmiServer(secret="s").start()
    options = FollowerOptions("127.0.0.1", server.port, "coobill", "s", cdr_events="on")
    follower = AmiFollower(options, on_call_ended=ended, on_reconciled=reconciled)
    await follower.start()
    await server.next_login()

    # Throughput: every call's whole stream at once.
    start = time.perf_counter()
    await server.send_events(f for _, frames in streams[:calls] for f in frames)
    await asyncio.wait_for(done.wait(), 300)
    throughput = calls / (time.perf_counter() - start)

    # Latency: `live` calls up at once, then they end one by one, 5 ms apart.
    done.clear()
    wanted = calls + live
    up = streams[calls:]
    ends: dict[str, float] = {}
    await server.send_events(f for _, frames in up for f in frames if f.event != "Hangup"
                             and f.event != "Cdr" and f.t < 5)
    for uid, frames in up:
        tail = [f for f in frames if f.t >= 5 or f.event in ("Hangup", "Cdr")]
        ends[uid] = time.perf_counter()
        await server.send_events(tail)
        await asyncio.sleep(0.005)
    await asyncio.wait_for(done.wait(), 120)
    latencies = sorted((settled_at[u] - t) * 1000 for u, t in ends.items())
    await follower.stop()
    await server.close()
    await indexer.stop()
    figures = {
        "settled_per_s": throughput,
        "hangup_to_debit_p50_ms": statistics.median(latencies),
        "hangup_to_debit_p99_ms": latencies[int(len(latencies) * 0.99) - 1],
    }
    if sender is not None:
        figures |= await drain_outbox(ctx, sender, lambda: delivered)
    await ctx.uow.dispose()
    return figures


async def drain_outbox(ctx, sender: WebhookSender, delivered) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """What the sender had delivered by the end of the measured run, and whether it then
    delivers the rest (each event, the setup's recharges included) within a minute."""
    during = delivered()
    async with asyncio.timeout(60):
        # The outbox's state is in the ledger, which nothing can signal: looked at.
        while await webhook_outbox.due(ctx):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    await sender.stop()
    counts = await webhook_outbox.state_counts(ctx)
    return {"webhooks_delivered_during_run": float(during),
            "webhooks_delivered": float(counts["delivered"]),
            "webhooks_undelivered": float(sum(counts.values()) - counts["delivered"])}


def main(calls: int = 3000, live: int = 200, outbox: bool = False) -> dict[str, float]:
    if not outbox:
        return asyncio.run(run(calls, live))
    receiver, url = start_receiver()
    try:
        return asyncio.run(run(calls, live, url))
    finally:
        receiver.terminate()
        receiver.wait()


if __name__ == "__main__":
    import argparse
    import logging

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--live", type=int, default=200)
    parser.add_argument("--outbox", action="store_true",
                        help="the webhook outbox on, delivering to a local receiver")
    options = parser.parse_args()
    logging.disable(logging.INFO)
    for key, value in main(options.calls, options.live, options.outbox).items():
        print(f"{key:30} {value:,.2f}")
