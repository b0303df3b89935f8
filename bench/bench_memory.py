"""Memory: the daemon's resident size with the 100,000-rate deck loaded.

This process imports the deck into a SQLite ledger (as `coobill rates import` would). A fresh
process then starts the real daemon on it (gate and portal listening on loopback; AMI off,
as no PBX is there), reads VmRSS from /proc/self/status (the baseline: the same process
before the rates are loaded), builds the rate book as the gate does on its first call
(services.rates.rate_book inside a unit of work on the ledger thread), and reads VmRSS
again; VmHWM is the peak while building."""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def status_mb() -> dict[str, float]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024  # kB
    return out


async def prepare(path: Path, size: int) -> None:
    from bench.deck import EXTENSIONS, deck_csv, deck_rows
    from coobill.bootstrap import bootstrap
    from coobill.config import Settings
    from coobill.services.extensions import ensure_extensions
    from coobill.services.rate_decks import import_rates
    from coobill.storage import schema

    ctx = bootstrap(Settings(database={"url": f"sqlite+aiosqlite:///{path}"}))
    await schema.upgrade(ctx.uow.engine)
    await ensure_extensions(ctx, [(e, "") for e in sorted(EXTENSIONS)])
    await import_rates(ctx, deck_csv(deck_rows(size)))
    await ctx.uow.dispose()


async def measure(path: Path) -> dict[str, float]:
    """In the fresh process: the daemon up, then its rate book loaded."""
    interpreter = status_mb()["VmRSS"]  # nothing of coobill imported yet
    import logging

    from coobill.config import Settings
    from coobill.daemon import Daemon
    from coobill.services.rates import rate_book
    from coobill.services.settings import billing_settings

    logging.disable(logging.WARNING)
    settings = Settings(database={"url": f"sqlite+aiosqlite:///{path}"}, agi={"port": 0},
                        ami={"enabled": False}, web={"port": 0})
    daemon = Daemon(settings)
    await daemon.start()
    try:
        ctx = daemon.ctx
        assert ctx is not None
        gc.collect()
        before = status_mb()

        def load(session):  # type: ignore[no-untyped-def]
            return rate_book(ctx, session, billing_settings(session).rates_version)

        start = time.perf_counter()
        book = await ctx.uow.run(load)
        build_s = time.perf_counter() - start
        gc.collect()
        after = status_mb()
        rates = len(book)
    finally:
        await daemon.stop()
    return {
        "rates": float(rates),
        "rss_mb_interpreter": interpreter,
        "rss_mb_daemon_before_book": before["VmRSS"],
        "rss_mb_daemon_with_book": after["VmRSS"],
        "book_mb": after["VmRSS"] - before["VmRSS"],
        "peak_mb_while_building": after["VmHWM"],
        "book_build_s": build_s,
    }


def main(size: int = 100_000) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "memory.db"
        asyncio.run(prepare(path, size))
        child = subprocess.run([sys.executable, "-m", "bench.bench_memory", "--child", str(path)],
                               check=True, capture_output=True, text=True)
    return json.loads(child.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(asyncio.run(measure(Path(sys.argv[2])))))
    else:
        for key, value in main().items():
            print(f"{key:28} {value:,.2f}")
