"""Rating: quotes per second over a 100,000-rate deck (rate book vs a naive scan), the deck's
import time into the ledger - first into an empty ledger, then again as a dated deck
(`rate import --from`) over the one in force, which ends it at the moment - and the resident
size of a process holding the loaded book.

The deck has calendars on a share of its rates (days of the week, holidays, dated decks) and a
holiday calendar; each quote is at a local date and time, so the calendar's checks are timed."""

from __future__ import annotations

import asyncio
import random
import resource
import tempfile
import time as clock
from pathlib import Path

from bench.deck import (
    EXTENSIONS,
    HOLIDAYS,
    call_moments,
    deck_csv,
    deck_rates,
    deck_rows,
    dialled_numbers,
)
from coobill.rating import RateBook, select_rate


def quotes_per_second(select, numbers, exts, times) -> float:  # type: ignore[no-untyped-def]
    start = clock.perf_counter()
    for number, ext, at in zip(numbers, exts, times, strict=True):
        select(ext, number, at)
    return len(numbers) / (clock.perf_counter() - start)


# The dated deck's moment: within the spans of the deck's own dated rates (bench/deck.py
# CALENDARS), so none of its rows ends before it takes effect.
DATED_FROM = "2026-12-31 00:00"


async def import_seconds(csv_text: str) -> tuple[float, float]:
    """The deck's import into an empty ledger, then its dated import over it."""
    from coobill.bootstrap import bootstrap
    from coobill.config import Settings
    from coobill.services.extensions import ensure_extensions
    from coobill.services.rate_decks import import_rates
    from coobill.storage import schema

    with tempfile.TemporaryDirectory() as tmp:
        ctx = bootstrap(Settings(database={"url": f"sqlite+aiosqlite:///{Path(tmp) / 'b.db'}"}))
        await schema.upgrade(ctx.uow.engine)
        await ensure_extensions(ctx, [(e, "") for e in sorted(EXTENSIONS)])
        start = clock.perf_counter()
        await import_rates(ctx, csv_text)
        elapsed = clock.perf_counter() - start
        start = clock.perf_counter()
        await import_rates(ctx, csv_text, effective=DATED_FROM)
        dated = clock.perf_counter() - start
        await ctx.uow.dispose()
    return elapsed, dated


def main(size: int = 100_000) -> dict[str, float]:
    rows = deck_rows(size)
    rates = deck_rates(rows)
    rng = random.Random(3)
    n = 100_000
    numbers = dialled_numbers(rows, n)
    exts = [rng.choice(sorted(EXTENSIONS)) for _ in range(n)]
    times = call_moments(n)

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    book = RateBook(rates, HOLIDAYS)
    book_qps = quotes_per_second(book.select, numbers, exts, times)
    scan_n = 200
    scan_qps = quotes_per_second(lambda e, num, at: select_rate(rates, e, num, at, HOLIDAYS),
                                 numbers[:scan_n], exts[:scan_n], times[:scan_n])
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    import_s, dated_s = asyncio.run(import_seconds(deck_csv(rows)))
    return {
        "rates": float(len(book)),
        "book_quotes_per_s": book_qps,
        "scan_quotes_per_s": scan_qps,
        "speedup_vs_scan": book_qps / scan_qps,
        "import_seconds": import_s,
        "dated_import_seconds": dated_s,
        "rss_mb_with_book": rss_mb,
        "rss_mb_before_book": before / 1024,
    }


if __name__ == "__main__":
    for key, value in main().items():
        print(f"{key:24} {value:,.2f}")
