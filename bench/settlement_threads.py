"""Where settlement's CPU goes, by thread: the CPU time (Linux, /proc) each thread of the
process spent per settled call while every stream of `calls` recorded calls is replayed at
once, beside the same for the AMI follower alone (bench/settlement_floor.py's path):

    python -m bench.settlement_threads coobill|floor [--calls N]

What a settled call costs the event loop (AMI parsing, the call tracker, the hand-off to
the ledger, the fake Asterisk in the same process) and SQLite's ledger thread (the unit of
work: Python, the driver and SQLite itself); their sum against the wall time tells how much
of the two ran side by side."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import threading
import time
from pathlib import Path
from typing import Any

from tests.fakes.ami_server import FakeAmiServer

from bench import bench_settlement
from coobill.ami.follower import AmiFollower, FollowerOptions


def _cpu_by_thread() -> dict[str, float]:
    names = {t.native_id: t.name for t in threading.enumerate()}
    names[os.getpid()] = "loop"
    tick = os.sysconf("SC_CLK_TCK")
    seen: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        name = names.get(int(tid), "other")
        seen[name] = seen.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return seen


async def run(kind: str, calls: int) -> dict[str, Any]:
    ctx = None
    if kind == "floor":
        template = bench_settlement.call_template()
        streams = [(uid, frames) for uid, _, frames in
                   (bench_settlement.clone(template, n) for n in range(calls))]
    else:
        ctx, streams = await bench_settlement.setup(calls)
    ended: set[str] = set()
    done = asyncio.Event()

    def note(uniqueids: list[str]) -> None:
        ended.update(uniqueids)
        if len(ended) >= calls:
            done.set()

    if ctx is None:
        async def on_call_ended(call: Any) -> None:
            note([call.uniqueid])
    else:
        from coobill.daemon.pbx import PbxLink

        link = PbxLink(ctx, on_settled=lambda settled: note([s.uniqueid for s in settled]))
        on_call_ended = link.call_ended

    async def reconciled(_live: set[str]) -> None:
        return None

    server = await FakeAmiServer(secret="s").start()
    follower = AmiFollower(FollowerOptions("127.0.0.1", server.port, "coobill", "s",
                                           cdr_events="on"),
                           on_call_ended=on_call_ended, on_reconciled=reconciled)
    await follower.start()
    await server.next_login()
    gc.collect()
    before, wall = _cpu_by_thread(), time.perf_counter()
    await server.send_events(f for _, frames in streams for f in frames)
    await asyncio.wait_for(done.wait(), 300)
    wall = time.perf_counter() - wall
    after = _cpu_by_thread()
    await follower.stop()
    await server.close()
    if ctx is not None:
        await ctx.uow.dispose()
    per_call = {name: 1000 * (after[name] - before.get(name, 0.0)) / calls for name in after}
    return {"calls_per_s": calls / wall, "wall_ms": 1000 * wall / calls,
            "cpu_ms": {k: v for k, v in per_call.items() if v >= 0.001}}


def main(kind: str, calls: int = 4000) -> dict[str, Any]:
    import logging

    logging.disable(logging.INFO)
    return asyncio.run(run(kind, calls))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("coobill", "floor"))
    parser.add_argument("--calls", type=int, default=4000)
    args = parser.parse_args()
    figures = main(args.kind, args.calls)
    cpu = figures["cpu_ms"]
    print(f"{args.kind}: {figures['calls_per_s']:,.0f} calls/s, {figures['wall_ms']:.3f} ms "
          f"wall a call; CPU a call: " + ", ".join(f"{k} {v:.3f} ms" for k, v in cpu.items())
          + f" (in all {sum(cpu.values()):.3f} ms)")
