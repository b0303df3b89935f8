"""`python -m bench` (`make bench`): every benchmark, then a summary against the targets.

They run one after another, each in a fresh process - never two at once, the figures would
disturb each other - then each figure is set against its baseline and its target. `--quick`
runs them small (a smoke test: its figures are not the ones to quote); `--only` picks some;
`--json` keeps the raw figures. docs/benchmarks.md records a full run."""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

Figures = dict[str, Any]


def _rating(quick: bool) -> Figures:
    from bench import bench_rating

    return bench_rating.main(20_000 if quick else 100_000)


def _gate(quick: bool) -> Figures:
    from bench import bench_gate

    # `capped`: the gate with every spend cap of its extension set (issue 18), measured in the
    # same rounds as the plain gate and the floor.
    if quick:
        return bench_gate.main(500, rounds=1, caps=True)
    return bench_gate.main(3000, rounds=3, caps=True)


def _settlement(quick: bool) -> Figures:
    from bench import bench_settlement, settlement_floor

    calls, live = (500, 50) if quick else (3000, 200)
    return {"coobill": bench_settlement.main(calls, live),
            "coobill_with_outbox": bench_settlement.main(calls, live, outbox=True),
            "floor": settlement_floor.main(calls, live)}


def _stats(backend: str) -> Callable[[bool], Figures]:
    def run(quick: bool) -> Figures:
        from bench import bench_stats

        return bench_stats.main(backend, 100_000 if quick else 1_000_000, 1 if quick else 3)

    return run


def _memory(quick: bool) -> Figures:
    from bench import bench_memory

    return bench_memory.main(20_000 if quick else 100_000)


def _mixed(quick: bool) -> Figures:
    """The floor, the daemon, and the daemon with its portal flooded: side by side, one run."""
    from bench import bench_mixed

    duration = 10.0 if quick else 60.0
    return {"floor": bench_mixed.main(duration, floor=True),
            "coobill": bench_mixed.main(duration),
            "portal": bench_mixed.main(duration, portal=True)}


def _gate_pg(quick: bool) -> Figures:
    from bench import bench_gate_pg

    return bench_gate_pg.main(300 if quick else 3000)


def _records(backend: str) -> Callable[[bool], Figures]:
    def run(quick: bool) -> Figures:
        from bench import bench_records

        return bench_records.main(backend, 20_000 if quick else RECORDS, 3 if quick else 20)

    return run


# Call and recharge records bench_records fills (each): `--records` sets it; the issue's
# target is a million (`--records 1000000`, about 10 minutes more per database).
RECORDS = 200_000


BENCHMARKS: dict[str, Callable[[bool], Figures]] = {
    "rating": _rating,
    "gate": _gate,
    "settlement": _settlement,
    "stats-sqlite": _stats("sqlite"),
    "stats-postgresql": _stats("postgresql"),
    "memory": _memory,
    "mixed": _mixed,
    "gate-postgresql": _gate_pg,
    "records-sqlite": _records("sqlite"),
    "records-postgresql": _records("postgresql"),
}


@dataclass
class Line:
    figure: str
    value: float
    unit: str
    baseline: float | None = None
    target: str = ""
    met: bool | None = None

    def ratio(self) -> str:
        """value / baseline: for a rate higher is better, for a time or a size lower is."""
        return f"{self.value / self.baseline:,.2f}x" if self.baseline else "-"


def lines(name: str, f: Figures) -> list[Line]:
    """Each benchmark's headline figures, with baseline and target (docs/benchmarks.md)."""
    if name == "rating":
        return [
            Line("quotes/s (rate book vs naive scan)", f["book_quotes_per_s"], "/s",
                 f["scan_quotes_per_s"], target=">= 100,000/s",
                 met=f["book_quotes_per_s"] >= 100_000),
            Line("deck import", f["import_seconds"], "s", target="< 10 s",
                 met=f["import_seconds"] < 10),
            # absent from runs recorded before it was measured
            *([Line("dated deck import (--from, over the deck in force)",
                    f["dated_import_seconds"], "s", target="< 10 s",
                    met=f["dated_import_seconds"] < 10)]
              if "dated_import_seconds" in f else []),
        ]
    if name == "gate":
        out = []
        for c in (1, 50):
            gate, floor = f[f"coobill@{c}"], f[f"bare@{c}"]
            # the medians of the rounds' own ratios (bench_gate.main)
            at = f[f"ratio@{c}"]
            ratio, over = at["throughput_vs_floor"], at["p99_over_floor_ms"]
            out += [
                Line(f"authorizations/s @{c} (vs bare FastAGI; {ratio:.2f}x by round)",
                     gate["per_s"], "/s",
                     floor["per_s"], target=">= 0.7x floor", met=ratio >= 0.7),
                Line(f"gate p50 @{c}", gate["p50_ms"], "ms", floor["p50_ms"]),
                Line(f"gate p99 @{c} ({over:+.2f} ms over the floor)", gate["p99_ms"], "ms",
                     floor["p99_ms"], target="<= floor + 1 ms" if c == 1 else "",
                     met=over <= 1 if c == 1 else None),
            ]
        return out + capped_lines(f)
    if name == "settlement":
        mine, floor, hooked = f["coobill"], f["floor"], f["coobill_with_outbox"]
        ratio = mine["settled_per_s"] / floor["ended_per_s"]
        return [
            Line("settled calls/s (vs AMI follower alone)", mine["settled_per_s"], "/s",
                 floor["ended_per_s"], target=">= 0.8x floor", met=ratio >= 0.8),
            Line("hangup-to-debit p50", mine["hangup_to_debit_p50_ms"], "ms",
                 floor["hangup_to_callback_p50_ms"]),
            Line("hangup-to-debit p99", mine["hangup_to_debit_p99_ms"], "ms",
                 floor["hangup_to_callback_p99_ms"]),
            Line("settled calls/s, webhook outbox on (vs AMI follower alone)",
                 hooked["settled_per_s"], "/s", floor["ended_per_s"], target=">= 0.8x floor",
                 met=hooked["settled_per_s"] / floor["ended_per_s"] >= 0.8),
            Line("hangup-to-debit p99, webhook outbox on", hooked["hangup_to_debit_p99_ms"],
                 "ms", floor["hangup_to_callback_p99_ms"]),
            *outbox_lines(hooked),
        ]
    if name.startswith("stats"):
        return [
            Line(
                f"statistics by {by} (vs Python aggregation)",
                f[f"{by}_service_s"],
                "s",
                f[f"{by}_python_baseline_s"],
                target="<= 1 s",
                met=f[f"{by}_service_s"] <= 1,
            )
            for by in ("day", "month")
        ]
    if name == "memory":
        return [
            Line(
                "daemon RSS with the deck (vs before loading)",
                f["rss_mb_daemon_with_book"],
                "MB",
                f["rss_mb_daemon_before_book"],
                target="<= 150 MB",
                met=f["rss_mb_daemon_with_book"] <= 150,
            )
        ]
    if name == "mixed":
        return mixed_lines(f)
    if name == "gate-postgresql":
        one, four, shared = f["one@50"], f["four@50"], f["shared"]
        return [
            Line("one daemon on PG: authorizations/s @50", one["per_s"], "/s",
                 f["floor@50"]["per_s"], target=">= 0.5x floor",
                 met=f["ratio"]["one_vs_floor@50"] >= 0.5),
            Line("one daemon on PG: p99 @50", one["p99_ms"], "ms", f["floor@50"]["p99_ms"]),
            Line("one daemon on PG: p99 @1", f["one@1"]["p99_ms"], "ms", f["floor@1"]["p99_ms"]),
            Line("four daemons on one PG: aggregate/s @50", four["per_s"], "/s", one["per_s"],
                 target=">= 2x one daemon", met=f["ratio"]["four_vs_one@50"] >= 2),
            Line("four daemons on one PG: worst p99 @50", four["p99_ms"], "ms", one["p99_ms"]),
            Line(f"one extension, four daemons: overspend ({shared['allowed']:.0f} allowed)",
                 shared["overspend"], "", target="0", met=shared["overspend"] == 0),
        ]
    if name.startswith("records"):
        pages = [k[:-len("_p95_ms")] for k in f if k.endswith("_p95_ms")]
        out = [Line(f"{page} p95 ({f['records']:,.0f} records)", f[f"{page}_p95_ms"], "ms",
                    target="<= 300 ms", met=f[f"{page}_p95_ms"] <= 300) for page in pages]
        out.append(Line("CSV download: resident memory growth", f["csv_rss_growth_mb"], "MB",
                        f["csv_rss_before_mb"], target="<= 50 MB",
                        met=f["csv_rss_growth_mb"] <= 50))
        return out
    return []


def capped_lines(f: Figures) -> list[Line]:
    """The gate with every spend cap set, against the same floor and targets (a run of an
    older bench without `capped` has none)."""
    if "capped@1" not in f:
        return []
    out = []
    for c in (1, 50):
        at = f[f"capped_ratio@{c}"]
        ratio, over = at["throughput_vs_floor"], at["p99_over_floor_ms"]
        out += [
            Line(f"caps set: authorizations/s @{c} ({ratio:.2f}x by round)",
                 f[f"capped@{c}"]["per_s"], "/s", f[f"bare@{c}"]["per_s"],
                 target=">= 0.7x floor", met=ratio >= 0.7),
            Line(f"caps set: gate p99 @{c} ({over:+.2f} ms over the floor)",
                 f[f"capped@{c}"]["p99_ms"], "ms", f[f"bare@{c}"]["p99_ms"],
                 target="<= floor + 1 ms" if c == 1 else "",
                 met=over <= 1 if c == 1 else None),
        ]
    return out


def outbox_lines(hooked: Figures) -> list[Line]:
    """The sender delivered every event to the local receiver (a run of an older bench,
    with nothing listening, has no such figures)."""
    if "webhooks_delivered" not in hooked:
        return []
    return [Line(f"webhook events delivered ({hooked['webhooks_delivered_during_run']:,.0f} "
                 "during the run)", hooked["webhooks_delivered"], "", target="all, 0 left",
                 met=hooked["webhooks_undelivered"] == 0)]


def mixed_lines(f: Figures) -> list[Line]:
    """150 calls/s: the daemon against the floor, then against itself with its portal flooded."""
    mine, floor, portal = f["coobill"], f["floor"], f["portal"]

    def kept_up(run: Figures) -> bool:
        return (run["errors"] == 0 and run["allowed"] == run["calls"] == run["settled"]
                and run["offered_calls_per_s"] >= 0.99 * 150)

    worse = portal["gate_p99_ms"] - mine["gate_p99_ms"]
    return [
        Line("calls/s offered, every one allowed and settled", mine["offered_calls_per_s"],
             "/s", target="150/s, none lost", met=kept_up(mine)),
        Line("gate p50 (vs floor)", mine["gate_p50_ms"], "ms", floor["gate_p50_ms"]),
        Line("gate p99 (vs floor)", mine["gate_p99_ms"], "ms", floor["gate_p99_ms"],
             target="<= 3x floor p99", met=mine["gate_p99_ms"] <= 3 * floor["gate_p99_ms"]),
        Line("hangup-to-debit p50 (vs floor)", mine["hangup_to_debit_p50_ms"], "ms",
             floor["hangup_to_debit_p50_ms"]),
        Line("hangup-to-debit p99 (vs floor)", mine["hangup_to_debit_p99_ms"], "ms",
             floor["hangup_to_debit_p99_ms"], target="<= 25 ms",
             met=mine["hangup_to_debit_p99_ms"] <= 25),
        Line("portal flooded: calls/s, every one allowed and settled",
             portal["offered_calls_per_s"], "/s", target="150/s, none lost",
             met=kept_up(portal) and portal.get("portal_errors", 1) == 0),
        Line(f"portal flooded: gate p99 ({worse:+.2f} ms; "
             f"{portal.get('portal_requests_per_s', 0):,.0f} portal requests/s)",
             portal["gate_p99_ms"], "ms", mine["gate_p99_ms"], target="<= +2 ms",
             met=worse <= 2),
        Line("portal flooded: hangup-to-debit p99", portal["hangup_to_debit_p99_ms"], "ms",
             mine["hangup_to_debit_p99_ms"], target="<= 25 ms",
             met=portal["hangup_to_debit_p99_ms"] <= 25),
    ]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() \
            else []:
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} CPUs"
    import platform

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"


def show(figures: Figures, indent: str = "  ") -> None:
    for key, value in figures.items():
        if isinstance(value, dict):
            print(f"{indent}{key}:")
            show(value, indent + "  ")
        elif isinstance(value, float):
            print(f"{indent}{key:30} {value:,.2f}")
        else:
            print(f"{indent}{key:30} {value}")


def busy_cores() -> tuple[float, float]:
    """(CPU seconds the whole machine has been busy, those spent for the benchmarks: this
    process's finished children, and the local PostgreSQL server's processes)."""
    tick = os.sysconf("SC_CLK_TCK")
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks[:8]
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    ours = children.ru_utime + children.ru_stime
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            name, _, rest = stat.read_text().partition(") ")
        except OSError:  # gone meanwhile
            continue
        if name.endswith("(postgres"):  # a backend's time, or the ones it reaped
            fields = rest.split()
            ours += sum(int(v) for v in fields[11:15]) / tick
    return (user + nice + system + irq + softirq + steal) / tick, ours


def wait_until_quiet(limit: float, patience: float) -> float:
    """Wait (up to `patience` s) until the rest of the machine uses under `limit` of a core
    over 5 s; return what it used over the last 5 s."""
    deadline = time.monotonic() + patience
    while True:
        busy, _ = busy_cores()
        time.sleep(5)
        other = (busy_cores()[0] - busy) / 5
        if other < limit or time.monotonic() > deadline:
            return other
        print(f"  (waiting: the machine is busy with {other:.2f} cores of other work)", flush=True)


def run_one(name: str, quick: bool) -> Figures:
    """One benchmark in a fresh process: what an earlier one left in this process's heap
    (and its garbage collections) must not weigh on the next one's figures. Also measured:
    the CPU the rest of the machine used meanwhile (another user's load disturbs figures)."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "figures.json"
        busy, ours = busy_cores()
        start = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "bench", "--child", "--only", name,
                               "--json", str(raw), "--records", str(RECORDS),
                               *(["--quick"] if quick else [])], check=False)
        elapsed = time.monotonic() - start
        busy_after, ours_after = busy_cores()
        if not raw.exists():
            raise RuntimeError(f"{name} exited with status {done.returncode}")
        report = json.loads(raw.read_text())
    if name in report["failed"]:
        raise RuntimeError(report["failed"][name])
    figures: Figures = report["results"][name]
    other = max(0.0, (busy_after - busy) - (ours_after - ours)) / elapsed
    figures["other_load_cores"] = other
    print(f"  other work on the machine meanwhile: {other:.2f} cores", flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    global RECORDS  # noqa: PLW0603 - --records: what records-* fill, here and in the children
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    parser.add_argument("--only", help=f"comma-separated, of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--json", help="write every raw figure to this file")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="before each benchmark, wait up to this long for the rest of the "
                             "machine to use under 0.15 cores (a shared machine)")
    parser.add_argument("--records", type=int, default=RECORDS, metavar="N",
                        help=f"call and recharge records for records-* (default {RECORDS:,}; "
                             "the target is 1000000)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    RECORDS = args.records
    chosen = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = set(chosen) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark {', '.join(sorted(unknown))}")
    logging.disable(logging.INFO)  # the daemon's one line per decision is not measured
    if not args.child:
        print(f"CPU: {cpu_model()}", flush=True)

    results: dict[str, Figures] = {}
    failed: dict[str, str] = {}
    for name in chosen:
        if not args.child:
            print(f"== {name}{' (quick)' if args.quick else ''}", flush=True)
        if args.wait_quiet and not args.child:
            wait_until_quiet(0.15, args.wait_quiet)
        start = time.perf_counter()
        try:
            run = BENCHMARKS[name] if args.child else partial(run_one, name)
            results[name] = run(args.quick)
        except Exception as exc:  # noqa: BLE001 - reported in the summary; the others still run
            failed[name] = f"{exc.__class__.__name__}: {exc}"
            traceback.print_exc()
            continue
        if args.child:
            show(results[name])
        else:
            print(f"  ({time.perf_counter() - start:,.0f} s)", flush=True)
    if not args.child:
        summary(results, failed, args.quick)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"quick": args.quick, "cpu": cpu_model(), "results": results,
                   "failed": failed}, out, indent=1)
    return 1 if failed else 0


def summary(results: dict[str, Figures], failed: dict[str, str], quick: bool) -> None:
    print("\n== summary" + (" (quick run: sizes reduced, not the figures to quote)"
                            if quick else ""))
    print(f"CPU: {cpu_model()}")
    print(f"{'benchmark':17} {'figure':46} {'value':>12} {'baseline':>12} {'vs base':>8}  "
          f"{'target':18} met")
    for name, figures in results.items():
        for line in lines(name, figures):
            value = f"{line.value:,.2f} {line.unit}"
            base = f"{line.baseline:,.2f}" if line.baseline else "-"
            met = {True: "yes", False: "NO", None: "-"}[line.met]
            print(
                f"{name:17} {line.figure:46} {value:>12} {base:>12} {line.ratio():>8}  "
                f"{line.target or '-':18} {met}"
            )
    for name, reason in failed.items():
        print(f"{name:17} FAILED: {reason}")
    busy = {n: f["other_load_cores"] for n, f in results.items() if "other_load_cores" in f}
    if busy:
        print(
            "other work on the machine (cores): "
            + ", ".join(f"{n} {v:.2f}" for n, v in busy.items())
        )
        disturbed = [n for n, v in busy.items() if v > 0.2]
        if disturbed:
            print(f"disturbed, rerun before quoting: {', '.join(disturbed)}")


if __name__ == "__main__":
    sys.exit(main())
