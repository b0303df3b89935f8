"""The gate on PostgreSQL, the shared ledger of several PBXs: one daemon against the bare
FastAGI floor at concurrency 50, then four daemons (four simulated PBXs, each its own
[pbx] name and its own extensions) on the one PostgreSQL at once, each at concurrency 50,
then the four all calling one extension whose funds cannot cover every call.

Each daemon is the real gate (bench.gate_servers coobill-pg) in a process of its own, and so
is each daemon's caller (bench_gate's client, one per daemon: one client process would be the
bottleneck of four daemons). The ledger is a schema of its own, dropped afterwards.

    python -m bench.bench_gate_pg [--calls N]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time
import uuid
from decimal import Decimal
from typing import Any

from bench import bench_gate, bench_stats

DAEMONS = 4
PER_DAEMON = 50  # extensions each daemon gates
SHARED = "999"  # the extension all four call in the last round
SHARED_FUNDS = "100"  # five whole holds of 18.20 and a part of one


def daemon_extensions(daemon: int) -> tuple[str, ...]:
    return tuple(str(1000 + daemon * PER_DAEMON + n) for n in range(PER_DAEMON))


async def prepare(url: str, name: str) -> None:
    from bench.bench_records import context
    from coobill.services.balances import recharge
    from coobill.services.extensions import ExtensionChanges, set_extension
    from coobill.services.rate_fields import check_rate_fields
    from coobill.services.rates import add_rate
    from coobill.storage import schema

    ctx = context(url, name)
    try:
        await schema.upgrade(ctx.uow.engine)
        every = [e for d in range(DAEMONS) for e in daemon_extensions(d)]
        for ext in [*every, SHARED]:
            await set_extension(ctx, ext, ExtensionChanges(billing=True, credit_limit=Decimal(0)))
        await recharge(ctx, every, "100000")
        await recharge(ctx, [SHARED], SHARED_FUNDS)
        await add_rate(ctx, check_rate_fields(prefix="9", number_length=0, initial_cost="0.2",
                                              initial_seconds=0, rate="0.1", period_seconds=60,
                                              extensions="*"))
    finally:
        await ctx.uow.dispose()


async def overspend(url: str, name: str) -> dict[str, float]:
    """The shared extension after the race: what its open holds add up to, against its funds
    (zero overspend: the holds never exceed balance + credit limit, and `reserved` is them)."""
    from sqlalchemy import func, select

    from bench.bench_records import context
    from coobill.services.extensions import show_extension
    from coobill.storage.tables import Reservation

    ctx = context(url, name)
    try:
        ext = await show_extension(ctx, SHARED)
        async with ctx.uow.read() as uow:
            held, holds = (await uow.session.execute(
                select(func.coalesce(func.sum(Reservation.amount), 0), func.count())
                .where(Reservation.extension_number == SHARED,
                       Reservation.state.in_(("held", "flagged"))))).one()
    finally:
        await ctx.uow.dispose()
    held = Decimal(held)
    funds = ext.balance + ext.credit_limit
    return {"shared_funds": float(funds), "shared_held": float(held),
            "shared_holds": float(holds), "shared_reserved": float(ext.reserved),
            "overspend": float(max(Decimal(0), held - funds) + abs(held - ext.reserved))}


def _client(args: tuple[int, int, int, str, tuple[str, ...]]) -> dict[str, Any]:
    """One caller in a process of its own: bench_gate's load, with when it ran."""
    port, total, concurrency, tag, extensions = args
    started = time.perf_counter()  # CLOCK_MONOTONIC: comparable between processes
    figures = asyncio.run(bench_gate.load(port, total, concurrency, tag, extensions))
    return {**figures, "started": started, "ended": time.perf_counter()}


def at_once(jobs: list[tuple[int, int, int, str, tuple[str, ...]]]) -> list[dict[str, Any]]:
    with multiprocessing.get_context("fork").Pool(len(jobs)) as pool:
        return pool.map(_client, jobs)


def main(calls: int = 3000) -> dict[str, dict[str, float]]:
    url = bench_stats.pg_url()
    name = "bench_" + uuid.uuid4().hex[:12]
    asyncio.run(_schema(url, name, create=True))
    servers = []
    try:
        asyncio.run(prepare(url, name))
        floor = bench_gate.serve("bare")
        servers.append(floor)
        daemons = [bench_gate.serve("coobill-pg", url, name, f"pbx-{d}") for d in range(DAEMONS)]
        servers += daemons
        ports = [port for _, port in daemons]
        for d, port in enumerate(ports):  # each daemon's pool and rate book warm
            asyncio.run(bench_gate.load(port, 100, 10, f"warm{d}", daemon_extensions(d)))
        asyncio.run(bench_gate.load(floor[1], 200, 10, "warm-floor"))
        out: dict[str, dict[str, float]] = {}
        out["floor@50"] = asyncio.run(bench_gate.load(floor[1], calls, 50, "floor"))
        out["one@50"] = asyncio.run(bench_gate.load(ports[0], calls, 50, "one",
                                                    daemon_extensions(0)))
        out["one@1"] = asyncio.run(bench_gate.load(ports[0], calls // 5, 1, "one1",
                                                   daemon_extensions(0)))
        out["floor@1"] = asyncio.run(bench_gate.load(floor[1], calls // 5, 1, "floor1"))
        four = at_once([(port, calls, 50, f"four{d}", daemon_extensions(d))
                        for d, port in enumerate(ports)])
        span = max(f["ended"] for f in four) - min(f["started"] for f in four)
        out["four@50"] = {
            "per_s": DAEMONS * calls / span,
            "p50_ms": statistics.median(f["p50_ms"] for f in four),
            "p99_ms": max(f["p99_ms"] for f in four),
            "allowed": float(sum(f["allowed"] for f in four)),
        }
        shared = at_once([(port, max(50, calls // 20), 50, f"shared{d}", (SHARED,))
                          for d, port in enumerate(ports)])
        out["shared"] = {"allowed": float(sum(f["allowed"] for f in shared)),
                         **asyncio.run(overspend(url, name))}
        out["ratio"] = {
            "one_vs_floor@50": out["one@50"]["per_s"] / out["floor@50"]["per_s"],
            "four_vs_one@50": out["four@50"]["per_s"] / out["one@50"]["per_s"],
            "one_p99_over_floor@1_ms": out["one@1"]["p99_ms"] - out["floor@1"]["p99_ms"],
        }
        return out
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.wait()
        asyncio.run(_schema(url, name, create=False))


async def _schema(url: str, name: str, *, create: bool) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    admin = create_async_engine(url)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{name}"' if create
                                    else f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    finally:
        await admin.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="authorizations per measurement")
    for key, figures in main(parser.parse_args().calls).items():
        print(key, " ".join(f"{k}={v:,.2f}" for k, v in figures.items()))
