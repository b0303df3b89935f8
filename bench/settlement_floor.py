"""The baseline of bench_settlement: the same replayed AMI streams through the fake manager,
panoramisk and the call tracker (AmiFollower), each ended call only noted - no ledger, no
settlement. Measured the way bench_settlement measures coobill: calls/s with every stream
sent at once, and hangup-to-callback latency with `live` calls up, ending 5 ms apart."""

from __future__ import annotations

import asyncio
import statistics
import time

from tests.fakes.ami_server import FakeAmiServer

from bench.bench_settlement import call_template, clone
from coobill.ami.follower import AmiFollower, FollowerOptions


async def run(calls: int, live: int) -> dict[str, float]:
    template = call_template()
    streams = [(uid, frames)
               for uid, _, frames in (clone(template, n) for n in range(calls + live))]
    ended_at: dict[str, float] = {}
    done = asyncio.Event()
    wanted = calls

    async def ended(call) -> None:  # type: ignore[no-untyped-def]
        ended_at[call.uniqueid] = time.perf_counter()
        if len(ended_at) >= wanted:
            done.set()

    async def reconciled(_live: set[str]) -> None:
        return None

    server = await FakeAmiServer(secret="s").start()
    options = FollowerOptions("127.0.0.1", server.port, "coobill", "s", cdr_events="on")
    follower = AmiFollower(options, on_call_ended=ended, on_reconciled=reconciled)
    await follower.start()
    await server.next_login()

    start = time.perf_counter()
    await server.send_events(f for _, frames in streams[:calls] for f in frames)
    await asyncio.wait_for(done.wait(), 300)
    throughput = calls / (time.perf_counter() - start)

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
    latencies = sorted((ended_at[u] - t) * 1000 for u, t in ends.items())
    await follower.stop()
    await server.close()
    return {
        "ended_per_s": throughput,
        "hangup_to_callback_p50_ms": statistics.median(latencies),
        "hangup_to_callback_p99_ms": latencies[int(len(latencies) * 0.99) - 1],
    }


def main(calls: int = 3000, live: int = 200) -> dict[str, float]:
    return asyncio.run(run(calls, live))


if __name__ == "__main__":
    import logging

    logging.disable(logging.INFO)
    for key, value in main().items():
        print(f"{key:26} {value:,.2f}")
