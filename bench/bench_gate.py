"""The gate: authorizations per second and p50/p99 latency at concurrency 1 and 50, over
loopback, against a bare FastAGI responder measured in the same run (the floor).

Each server runs in its own process; this process plays Asterisk (the recorded env block,
`200 result=1` replies). Every authorization has a fresh uniqueid, so the real gate writes a
hold each time; the holds are never settled, as on a PBX with that many live calls."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time


def env_block(uniqueid: str, ext: str = "100") -> bytes:
    lines = [
        "agi_network: yes", "agi_network_script: authorize",
        "agi_request: agi://127.0.0.1:4573/authorize", f"agi_channel: PJSIP/{ext}-00000001",
        "agi_language: en", "agi_type: PJSIP", f"agi_uniqueid: {uniqueid}", "agi_version: 23.4.1",
        f"agi_callerid: {ext}", "agi_calleridname: Alice", "agi_callingpres: 0",
        "agi_callingani2: 0",
        "agi_callington: 0", "agi_callingtns: 0", "agi_dnid: unknown", "agi_rdnis: unknown",
        "agi_context: phones", "agi_extension: 913800000000", "agi_priority: 2",
        "agi_enhanced: 0.0", "agi_accountcode: ", "agi_threadid: 139772052670144",
        f"agi_arg_1: {ext}", "agi_arg_2: 913800000000",
    ]
    return ("\n".join(lines) + "\n\n").encode()


async def one_call(port: int, uniqueid: str, ext: str = "100") -> tuple[float, str]:
    """One conversation as Asterisk holds it: (seconds, COOBILL_RESULT; "" for none, as the
    dialplan reads a gate that closed the channel without a word)."""
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(env_block(uniqueid, ext))
    result = ""
    while True:
        try:
            line = await reader.readline()
        except ConnectionResetError:  # the gate's deadline: counted as not allowed
            break
        if not line:
            break
        if line.startswith(b'SET VARIABLE COOBILL_RESULT "'):
            result = line.split(b'"')[1].decode()
        writer.write(b"200 result=0\n" if line.startswith(b"EXEC") else b"200 result=1\n")
    writer.close()
    return time.perf_counter() - start, result


async def load(port: int, total: int, concurrency: int, tag: str,
               extensions: tuple[str, ...] = ("100",)) -> dict[str, float]:
    """`total` authorizations from `concurrency` callers, the extensions taken in turn."""
    latencies: list[float] = []
    verdicts: dict[str, int] = {}
    counter = iter(range(total))

    async def worker() -> None:
        for n in counter:
            ext = extensions[n % len(extensions)]
            seconds, verdict = await one_call(port, f"{tag}.{n}", ext)
            latencies.append(seconds)
            verdicts[verdict] = verdicts.get(verdict, 0) + 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "per_s": total / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "allowed": float(verdicts.get("ALLOW", 0)),
    }


def serve(kind: str, *args: str, source: str | None = None) -> tuple[subprocess.Popen[str], int]:
    """A server of `kind` (bench/gate_servers.py); `source`: another checkout's src to run
    coobill from (a before/after comparison in one run)."""
    env = None if source is None else {**os.environ, "PYTHONPATH": os.pathsep.join(
        [source, os.getcwd()])}
    proc = subprocess.Popen([sys.executable, "-m", "bench.gate_servers", kind, *args],
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def main(total: int = 3000, rounds: int = 3, *, caps: bool = False,
         before: str | None = None) -> dict[str, dict[str, float]]:
    """The servers up side by side; `rounds` rounds, each measuring the floor and then the
    gate at concurrency 1 and 50. Each figure is the median over the rounds, and each ratio
    the median of the rounds' ratios: a machine whose speed drifts (a shared VM) moves the
    floor and the gate together within a round, not between the two. `caps`: the gate with
    every spend cap set is measured too (`capped`); `before`: and the gate of another
    checkout's src (`before`)."""
    kinds: dict[str, tuple[str, str | None]] = {"bare": ("bare", None),
                                                "coobill": ("coobill", None)}
    if caps:
        kinds["capped"] = ("capped", None)
    if before is not None:
        kinds["before"] = ("coobill", before)
    servers = {name: serve(kind, source=source) for name, (kind, source) in kinds.items()}
    rounds_seen: dict[str, list[dict[str, float]]] = {}
    try:
        for kind, (_, port) in servers.items():
            asyncio.run(load(port, 200, 10, f"warm-{kind}"))
        for round_ in range(rounds):
            for concurrency in (1, 50):
                for kind, (_, port) in servers.items():
                    figures = asyncio.run(
                        load(port, total, concurrency, f"{kind}{concurrency}.{round_}"))
                    rounds_seen.setdefault(f"{kind}@{concurrency}", []).append(figures)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait()
    results = {name: {key: statistics.median(r[key] for r in seen) for key in seen[0]}
               for name, seen in rounds_seen.items()}
    for concurrency in (1, 50):
        for name in servers:
            if name == "bare":
                continue
            pairs = list(zip(rounds_seen[f"bare@{concurrency}"],
                             rounds_seen[f"{name}@{concurrency}"], strict=True))
            label = "ratio" if name == "coobill" else f"{name}_ratio"
            results[f"{label}@{concurrency}"] = {
                "throughput_vs_floor": statistics.median(g["per_s"] / f["per_s"]
                                                         for f, g in pairs),
                "p99_over_floor_ms": statistics.median(g["p99_ms"] - f["p99_ms"]
                                                       for f, g in pairs),
            }
    return results


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--total", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--caps", action="store_true", help="also the gate with caps set")
    parser.add_argument("--before", metavar="SRC", help="also the gate of this src directory")
    options = parser.parse_args()
    for name, figures in main(options.total, options.rounds, caps=options.caps,
                              before=options.before).items():
        print(name, " ".join(f"{k}={v:,.2f}" for k, v in figures.items()))
