"""Statistics: `services.reports.statistics` by day over a year and by month, over 1,000,000
call records, on SQLite and on PostgreSQL.

The ledger is migrated as the daemon migrates it (Alembic head), then filled with synthetic
calls spread over one year (100 extensions, ~70 % answered) by the drivers' bulk paths: sqlite3
executemany on SQLite, COPY on PostgreSQL (in a schema of its own, dropped afterwards, then
VACUUM ANALYZE as autovacuum would do after such a load). SQLite is not ANALYZEd: coobill
never does, so its planner works from its defaults, as on a real PBX.

Baseline: a plain Python aggregation over the same rows fetched raw through the driver
(`SELECT start, caller_extension, billable_seconds, cost ... WHERE start in the year`, summed
in a dict) - what a report would cost without the database aggregating. For context the plain
SQL GROUP BY the service issued before migration 0002 (strftime / to_char of `start`, then
extension; every call sorted) is timed too, sent through the driver without the service."""

from __future__ import annotations

import asyncio
import os
import random
import statistics as stats
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

YEAR = 2025
FIRST, LAST = date(YEAR, 1, 1), date(YEAR, 12, 31)
EXTENSIONS = [str(n) for n in range(100, 200)]
BATCH = 50_000
COLUMNS = ("uniqueid", "caller_extension", "caller_name", "dialled_number", "start", "answer",
           "end", "billable_seconds", "trunk", "rate_id", "rate_label", "cost", "disposition",
           "gated", "evidence")
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def pg_url() -> str:
    return (os.environ.get("COOBILL_BENCH_POSTGRES_URL")
            or os.environ.get("COOBILL_TEST_POSTGRES_URL") or DEFAULT_PG_URL)


def call_rows(total: int, seed: int = 5) -> Iterator[list[tuple[Any, ...]]]:
    """Batches of call rows in start order over the year (as a ledger fills)."""
    rng = random.Random(seed)
    span = (datetime(YEAR + 1, 1, 1) - datetime(YEAR, 1, 1)).total_seconds()
    origin = datetime(YEAR, 1, 1)
    step = span / total
    batch: list[tuple[Any, ...]] = []
    for i in range(total):
        start = origin + timedelta(seconds=int(i * step))
        ext = rng.choice(EXTENSIONS)
        roll = rng.random()
        if roll < 0.7:
            billsec = rng.randint(1, 900)
            answer = start + timedelta(seconds=rng.randint(2, 20))
            end = answer + timedelta(seconds=billsec)
            disposition, cost = "ANSWERED", 2000 + 1000 * -(-billsec // 60)
        else:
            billsec, answer = 0, None
            end = start + timedelta(seconds=rng.randint(1, 30))
            disposition, cost = ("NO ANSWER" if roll < 0.9 else "BUSY"), 0
        batch.append((
            f"{1735689600 + i // 50}.{i}", ext, f"Ext {ext}", f"9{rng.randrange(10**9, 10**10)}",
            start, answer, end, billsec, "carrier-a" if roll < 0.5 else "carrier-b", 1, "#1 9",
            cost, disposition, True, "cdr",
        ))
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _sqlite_text(value: datetime | None) -> str | None:
    # SQLAlchemy's SQLite DateTime storage format, so the service reads these rows as its own.
    return None if value is None else value.strftime("%Y-%m-%d %H:%M:%S.%f")


# --- loading ------------------------------------------------------------------------------


async def load_sqlite(path: Path, total: int) -> float:
    import sqlite3

    from coobill.storage import schema
    from coobill.storage.db import create_engine

    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await schema.upgrade(engine)
    await engine.dispose()
    start = time.perf_counter()
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    marks = ",".join("?" * len(COLUMNS))
    names = ",".join(f'"{c}"' for c in COLUMNS)  # "end" is an SQL keyword
    sql = f"INSERT INTO call ({names}) VALUES ({marks})"
    for batch in call_rows(total):
        db.executemany(sql, [(*r[:4], _sqlite_text(r[4]), _sqlite_text(r[5]), _sqlite_text(r[6]),
                              *r[7:]) for r in batch])
        db.commit()
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'call_search_mark'").fetchone():
        # As the daemon's call indexer leaves a ledger (daemon/call_index.py, migration 0010):
        # every call in the keyword index, in one statement here rather than 500 at a time.
        db.execute("INSERT INTO call_search(rowid, caller_extension, caller_name, dialled_number)"
                   " SELECT id, caller_extension, caller_name, dialled_number FROM call")
        db.execute("UPDATE call_search_mark SET indexed_up_to = (SELECT MAX(id) FROM call)")
        db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return time.perf_counter() - start


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def load_postgres(url: str, schema_name: str, total: int) -> float:
    import asyncpg

    start = time.perf_counter()
    conn = await asyncpg.connect(_asyncpg_dsn(url), server_settings={"search_path": schema_name})
    try:
        for batch in call_rows(total):
            await conn.copy_records_to_table("call", records=batch, columns=list(COLUMNS),
                                             schema_name=schema_name)
        await conn.execute("VACUUM ANALYZE call")
    finally:
        await conn.close()
    return time.perf_counter() - start


# --- what is timed ------------------------------------------------------------------------


def _bounds() -> tuple[datetime, datetime]:
    return datetime(YEAR, 1, 1), datetime(YEAR + 1, 1, 1)


async def service_seconds(ctx: Any, by: str) -> tuple[float, list[Any]]:
    from coobill.services.reports import Period, statistics

    start = time.perf_counter()
    rows = await statistics(ctx, by=by, period=Period(FIRST, LAST))
    return time.perf_counter() - start, rows


SQL_GROUP_BY = {
    "sqlite": ("SELECT strftime('{fmt}', start) AS b, caller_extension, count(*), "
               "sum(billable_seconds > 0), sum(billable_seconds), sum(cost) FROM call "
               "WHERE start >= ? AND start < ? GROUP BY b, caller_extension "
               "ORDER BY b, caller_extension"),
    "postgresql": ("SELECT to_char(start, '{fmt}') AS b, caller_extension, count(*), "
                   "sum((billable_seconds > 0)::int), sum(billable_seconds), sum(cost) FROM call "
                   "WHERE start >= $1 AND start < $2 GROUP BY b, caller_extension "
                   "ORDER BY b, caller_extension"),
}
FORMATS = {"sqlite": {"day": "%Y-%m-%d", "month": "%Y-%m"},
           "postgresql": {"day": "YYYY-MM-DD", "month": "YYYY-MM"}}
RAW = ("SELECT start, caller_extension, billable_seconds, cost FROM call "
       "WHERE start >= {a} AND start < {b}")


def _aggregate(rows: Any, key: Any) -> dict[tuple[Any, str], list[int]]:
    totals: dict[tuple[Any, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for start, ext, billsec, cost in rows:
        t = totals[key(start), ext]
        t[0] += 1
        if billsec > 0:
            t[1] += 1
        t[2] += billsec
        t[3] += cost
    return dict(sorted(totals.items()))


def sqlite_raw(path: Path, by: str) -> tuple[float, float, int]:
    """(python aggregation s, bare GROUP BY s, groups) with the stdlib driver."""
    import sqlite3

    a, b = (_sqlite_text(x) for x in _bounds())
    db = sqlite3.connect(path)
    cut = 10 if by == "day" else 7
    start = time.perf_counter()
    cursor = db.execute(RAW.format(a="?", b="?"), (a, b))
    groups = _aggregate(cursor, lambda s: s[:cut])
    python_s = time.perf_counter() - start
    start = time.perf_counter()
    plain = SQL_GROUP_BY["sqlite"].format(fmt=FORMATS["sqlite"][by])
    grouped = db.execute(plain, (a, b)).fetchall()
    sql_s = time.perf_counter() - start
    db.close()
    assert len(grouped) == len(groups)
    return python_s, sql_s, len(groups)


async def postgres_raw(url: str, schema_name: str, by: str) -> tuple[float, float, int]:
    import asyncpg

    a, b = _bounds()
    conn = await asyncpg.connect(_asyncpg_dsn(url), server_settings={"search_path": schema_name})
    try:
        key = (lambda s: (s.year, s.month, s.day)) if by == "day" else (lambda s: (s.year, s.month))
        start = time.perf_counter()
        rows = await conn.fetch(RAW.format(a="$1", b="$2"), a, b)
        groups = _aggregate(rows, key)
        python_s = time.perf_counter() - start
        del rows
        start = time.perf_counter()
        plain = SQL_GROUP_BY["postgresql"].format(fmt=FORMATS["postgresql"][by])
        grouped = await conn.fetch(plain, a, b)
        sql_s = time.perf_counter() - start
    finally:
        await conn.close()
    assert len(grouped) == len(groups)
    return python_s, sql_s, len(groups)


async def measure(ctx: Any, raw: Any, total: int, repeat: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for by in ("day", "month"):
        times = []
        rows: list[Any] = []
        for _ in range(repeat):
            seconds, rows = await service_seconds(ctx, by)
            times.append(seconds)
        assert sum(r.calls for r in rows) == total, "the report must count every call"
        python_s, sql_s, groups = await raw(by)
        median = stats.median(times)
        out[f"{by}_service_s"] = median
        out[f"{by}_service_worst_s"] = max(times)
        out[f"{by}_groups"] = float(groups)
        out[f"{by}_python_baseline_s"] = python_s
        out[f"{by}_plain_group_by_s"] = sql_s
        out[f"{by}_speedup_vs_python"] = python_s / median
        out[f"{by}_speedup_vs_plain_group_by"] = sql_s / median
    return out


async def run_sqlite(total: int, repeat: int) -> dict[str, float]:
    from coobill.bootstrap import bootstrap
    from coobill.config import Settings

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stats.db"
        load_s = await load_sqlite(path, total)
        ctx = bootstrap(Settings(database={"url": f"sqlite+aiosqlite:///{path}"}))
        try:
            def raw(by: str) -> Any:
                return asyncio.to_thread(sqlite_raw, path, by)

            out = await measure(ctx, raw, total, repeat)
        finally:
            await ctx.uow.dispose()
        out["db_mb"] = path.stat().st_size / 2**20
    out["load_s"] = load_s
    return out


async def run_postgres(total: int, repeat: int) -> dict[str, float]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from coobill.bootstrap import bootstrap
    from coobill.config import Settings
    from coobill.storage import schema
    from coobill.storage.db import create_engine
    from coobill.storage.uow import UnitOfWorkFactory

    url = pg_url()
    name = "bench_" + uuid.uuid4().hex[:12]
    admin = create_async_engine(url)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        engine = create_engine(url, connect_args={"server_settings": {"search_path": name}})
        await schema.upgrade(engine)
        load_s = await load_postgres(url, name, total)
        ctx = bootstrap(Settings(database={"url": url}), uow=UnitOfWorkFactory(engine))
        try:
            out = await measure(ctx, lambda by: postgres_raw(url, name, by), total, repeat)
        finally:
            await ctx.uow.dispose()
        async with admin.connect() as conn:
            size = (await conn.execute(text(
                f"SELECT pg_total_relation_size('\"{name}\".call')"))).scalar_one()
        out["db_mb"] = size / 2**20
        out["load_s"] = load_s
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        await admin.dispose()
    return out


def main(backend: str = "sqlite", total: int = 1_000_000, repeat: int = 3) -> dict[str, float]:
    runner = {"sqlite": run_sqlite, "postgresql": run_postgres}[backend]
    return asyncio.run(runner(total, repeat))


def command_line(main: Any, doc: str, repeat: int) -> None:
    """`python -m bench.<name> [sqlite|postgresql] [--rows N] [--repeat N]`: its figures."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("backend", nargs="?", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=repeat)
    args = parser.parse_args()
    for key, value in main(args.backend, args.rows, args.repeat).items():
        print(f"{key:30} {value:,.3f}")


if __name__ == "__main__":
    command_line(main, __doc__, 3)
