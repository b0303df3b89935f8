"""Where the time goes, per authorization and per settlement (cProfile), on SQLite:

    python -m bench.profile_calls [--calls N] [--top N]

gate: `authorize_call` (the service command the FastAGI adapter calls) N times one after the
other on a funded ledger; settlement: N authorized calls' recorded AMI streams replayed through
a fake Asterisk manager, panoramisk, the call tracker and the ledger (bench_settlement's path).
Both threads that do the work are profiled: the event loop's (FastAGI/AMI parsing, the call
tracker, the hand-off) and the SQLite ledger thread's (storage/group_commit.py: the ORM, the
statements, the commit); the CPU of every thread (process time) is given beside them. Self
time is summed by package: what the time goes to."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

PACKAGES = ("coobill", "sqlalchemy", "aiosqlite", "asyncio", "panoramisk", "tests/fakes",
            "sqlite3", "decimal", "logging")


def package_of(filename: str, function: str) -> str:
    if filename == "~":  # a builtin: name it by its C function
        text = function.lower()
        if "sqlite3" in text:
            return "sqlite3 (C)"
        if "select" in text or "epoll" in text or "poll" in text:
            return "waiting (epoll)"
        return "builtins (C)"
    for package in PACKAGES:
        if f"/{package}/" in filename or filename.endswith(f"/{package}.py"):
            if package == "coobill":
                part = filename.split("/coobill/", 1)[1].split("/", 1)[0]
                return f"coobill.{part.removesuffix('.py')}"
            return package
    return "other Python"


def _summed(profile: cProfile.Profile, count: int) -> dict[str, Any]:
    stats = pstats.Stats(profile)
    by_package: dict[str, float] = defaultdict(float)
    functions = []
    for (filename, line, function), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        by_package[package_of(filename, function)] += own
        functions.append((own, cumulative, calls, f"{filename.rsplit('/', 2)[-1]}:{line}"
                                                  f"({function})"))
    return {"profiled_ms": 1000 * sum(by_package.values()) / count,
            "packages": sorted(((1000 * t / count, p) for p, t in by_package.items()),
                               reverse=True),
            "functions": sorted(functions, reverse=True)}


async def profiled(ctx: Any, work: Callable[[], Awaitable[int]]) -> dict[str, Any]:
    """`work` profiled on the event loop's thread and on the SQLite ledger thread (a unit of
    work run there switches its profiler on, another off)."""
    loop_profile, ledger_profile = cProfile.Profile(), cProfile.Profile()
    statements: dict[str, int] = defaultdict(int)

    def counted(sql: str) -> None:
        statements[sql.split(None, 1)[0].upper()] += 1

    def start(session: Any) -> None:
        # The statements SQLite runs on the ledger thread's connection, by their first word.
        session.connection().connection.driver_connection.set_trace_callback(counted)
        ledger_profile.enable()

    def stop(session: Any) -> None:
        ledger_profile.disable()
        session.connection().connection.driver_connection.set_trace_callback(None)

    await ctx.uow.run(start)
    cpu, wall = time.process_time(), time.perf_counter()
    loop_profile.enable()
    count = await work()
    loop_profile.disable()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await ctx.uow.run(stop)
    return {"count": count, "wall_ms": 1000 * wall / count, "cpu_ms": 1000 * cpu / count,
            "loop": _summed(loop_profile, count), "ledger": _summed(ledger_profile, count),
            "statements": {k: v / count for k, v in sorted(statements.items())}}


async def gate(calls: int) -> dict[str, Any]:
    from bench.bench_settlement import setup
    from coobill.services.commands import AuthorizeCall
    from coobill.services.gate import authorize_call

    ctx, _ = await setup(0)
    for n in range(100):  # warm: the rate book, the pool, the statement caches
        await authorize_call(ctx, AuthorizeCall(f"warm.{n}", str(100 + n % 100), "9138000001"))

    async def work() -> int:
        for n in range(calls):
            await authorize_call(ctx, AuthorizeCall(f"p.{n}", str(100 + n % 100), "9138000001"))
        return calls

    try:
        return await profiled(ctx, work)
    finally:
        await ctx.uow.dispose()


async def settlement(calls: int) -> dict[str, Any]:
    from tests.fakes.ami_server import FakeAmiServer

    from bench.bench_settlement import setup
    from coobill.ami.follower import AmiFollower, FollowerOptions
    from coobill.daemon.pbx import PbxLink

    ctx, streams = await setup(calls)
    settled: set[str] = set()
    done = asyncio.Event()

    def on_settled(settlements: Any) -> None:
        settled.update(s.uniqueid for s in settlements)
        if len(settled) >= calls:
            done.set()

    link = PbxLink(ctx, on_settled=on_settled)

    async def reconciled(_live: set[str]) -> None:
        return None

    server = await FakeAmiServer(secret="s").start()
    options = FollowerOptions("127.0.0.1", server.port, "coobill", "s", cdr_events="on")
    follower = AmiFollower(options, on_call_ended=link.call_ended, on_reconciled=reconciled)
    await follower.start()
    await server.next_login()

    async def work() -> int:
        await server.send_events(f for _, frames in streams for f in frames)
        await asyncio.wait_for(done.wait(), 300)
        return calls

    try:
        return await profiled(ctx, work)
    finally:
        await follower.stop()
        await server.close()
        await ctx.uow.dispose()


def report(name: str, figures: dict[str, Any], top: int) -> None:
    print(f"== {name}: {figures['count']} calls; per call {figures['wall_ms']:.3f} ms wall, "
          f"{figures['cpu_ms']:.3f} ms CPU (every thread, with cProfile's overhead)")
    print("  statements a call on the ledger thread's connection: " + ", ".join(
        f"{word} {n:.2f}" for word, n in figures["statements"].items())
        + f" (in all {sum(figures['statements'].values()):.2f})")
    for thread in ("loop", "ledger"):
        seen = figures[thread]
        print(f"  -- {thread} thread: {seen['profiled_ms']:.3f} ms a call, self time by package")
        for ms, package in seen["packages"]:
            if ms >= 0.005:
                print(f"  {ms:8.3f} ms  {package}")
        print("  top functions by self time (ms per call, self / cumulative, calls per call):")
        for own, cumulative, count, where in seen["functions"][:top]:
            print(f"  {1000 * own / figures['count']:8.3f} "
                  f"{1000 * cumulative / figures['count']:8.3f}"
                  f" {count / figures['count']:6.1f}  {where}")


def main(calls: int = 2000, top: int = 15) -> dict[str, dict[str, Any]]:
    import logging

    logging.disable(logging.INFO)
    return {"gate": asyncio.run(gate(calls)), "settlement": asyncio.run(settlement(calls))}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    for name, figures in main(args.calls, args.top).items():
        report(name, figures, args.top)
