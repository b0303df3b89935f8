"""A million records: the portal's call records and recharge records pages, and the CSV
download of a million calls, on SQLite and on PostgreSQL (issue 16).

The ledger is migrated to Alembic head and filled by the drivers' bulk paths (as
bench_stats.py does): 1,000,000 call records over a year (bench_stats.call_rows) and
1,000,000 recharges of 100 extensions. Then, through the portal app as a browser reaches it
(logged in, HTML rendered), each page is asked `repeat` times:

- the first page (no filter: the newest records),
- a page deep in the range (the middle page of the year),
- a keyword search (part of a dialled number / an extension's name), first page.

p95 per page against the target (<= 300 ms). The CSV download runs in a portal process of
its own (uvicorn, bench/portal_server.py) so that its resident memory is the server's alone:
the growth of its peak RSS (VmHWM, reset just before) over its RSS before the download,
target <= 50 MB, and the rows counted on the client's side must be every record.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import socket
import statistics as stats
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench import bench_stats

USER, PASSWORD = "bench", "bench-password-1"
EXTENSIONS = bench_stats.EXTENSIONS


def recharge_rows(total: int, seed: int = 7) -> Iterator[list[tuple[Any, ...]]]:
    """(created_at, extension_id, balance_before, amount, balance_after, who) in time order;
    Money as the column stores it (ten-thousandths)."""
    rng = random.Random(seed)
    origin = datetime(bench_stats.YEAR, 1, 1)
    step = 365 * 86400 / total
    balances = [0] * len(EXTENSIONS)
    batch: list[tuple[Any, ...]] = []
    for i in range(total):
        ext = rng.randrange(len(EXTENSIONS))
        amount = rng.choice((10, 20, 50, 100)) * 10_000
        before = balances[ext]
        balances[ext] = before + amount
        batch.append(
            (
                origin + timedelta(seconds=int(i * step)),
                ext + 1,
                before,
                amount,
                before + amount,
                "bill",
            )
        )
        if len(batch) == bench_stats.BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


EXTENSION_COLUMNS = (
    "id",
    "number",
    "name",
    "billing_enabled",
    "payment",
    "credit_limit",
    "balance",
    "total_recharged",
    "reserved",
    "locked",
    "created_at",
)
RECHARGE_COLUMNS = (
    "created_at",
    "extension_id",
    "balance_before",
    "amount",
    "balance_after",
    "who",
)


def extension_rows() -> list[tuple[Any, ...]]:
    created = datetime(bench_stats.YEAR, 1, 1)
    return [
        (i + 1, number, f"Ext {number}", True, "prepaid", 0, 0, 0, 0, False, created)
        for i, number in enumerate(EXTENSIONS)
    ]


def fill_sqlite(path: Path, total: int) -> None:
    import sqlite3

    db = sqlite3.connect(path)
    text = bench_stats._sqlite_text
    db.executemany(
        f"INSERT INTO extension ({','.join(EXTENSION_COLUMNS)}) VALUES "
        f"({','.join('?' * len(EXTENSION_COLUMNS))})",
        [(*r[:-1], text(r[-1])) for r in extension_rows()],
    )
    sql = (
        f"INSERT INTO recharge ({','.join(RECHARGE_COLUMNS)}) VALUES "
        f"({','.join('?' * len(RECHARGE_COLUMNS))})"
    )
    for batch in recharge_rows(total):
        db.executemany(sql, [(text(r[0]), *r[1:]) for r in batch])
        db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


async def fill_postgres(url: str, schema_name: str, total: int) -> None:
    import asyncpg

    conn = await asyncpg.connect(
        bench_stats._asyncpg_dsn(url), server_settings={"search_path": schema_name}
    )
    try:
        await conn.copy_records_to_table(
            "extension",
            records=extension_rows(),
            columns=list(EXTENSION_COLUMNS),
            schema_name=schema_name,
        )
        for batch in recharge_rows(total):
            await conn.copy_records_to_table(
                "recharge", records=batch, columns=list(RECHARGE_COLUMNS), schema_name=schema_name
            )
        await conn.execute("VACUUM ANALYZE recharge")
        await conn.execute("VACUUM ANALYZE extension")
    finally:
        await conn.close()


@asynccontextmanager
async def ledger(backend: str, total: int) -> AsyncIterator[tuple[str, str | None, float]]:
    """(database url, PostgreSQL schema or None, seconds to fill) of a filled ledger."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from coobill.storage import schema
    from coobill.storage.db import create_engine

    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "records.db"
            start = time.perf_counter()
            await bench_stats.load_sqlite(path, total)  # migrates, then the calls
            fill_sqlite(path, total)
            yield f"sqlite+aiosqlite:///{path}", None, time.perf_counter() - start
        return
    url = bench_stats.pg_url()
    name = "bench_" + uuid.uuid4().hex[:12]
    admin = create_async_engine(url)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        engine = create_engine(url, connect_args={"server_settings": {"search_path": name}})
        await schema.upgrade(engine)
        await engine.dispose()
        start = time.perf_counter()
        await bench_stats.load_postgres(url, name, total)
        await fill_postgres(url, name, total)
        yield url, name, time.perf_counter() - start
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        await admin.dispose()


def context(url: str, schema_name: str | None) -> Any:
    from coobill.bootstrap import bootstrap
    from coobill.config import Settings
    from coobill.storage.db import create_engine
    from coobill.storage.uow import UnitOfWorkFactory

    settings = Settings(database={"url": url})
    if schema_name is None:
        return bootstrap(settings)
    engine = create_engine(url, connect_args={"server_settings": {"search_path": schema_name}})
    return bootstrap(settings, uow=UnitOfWorkFactory(engine))


async def log_in(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/login", json={"name": USER, "password": PASSWORD})
    response.raise_for_status()
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]


async def page_times(
    url: str, schema_name: str | None, total: int, repeat: int
) -> dict[str, float]:
    from coobill.services import users
    from coobill.web.app import create_app
    from coobill.web.render import PAGE_SIZE

    ctx = context(url, schema_name)
    out: dict[str, float] = {}
    try:
        await users.add_user(ctx, USER, PASSWORD, "billing")
        transport = httpx.ASGITransport(app=create_app(ctx))
        async with httpx.AsyncClient(transport=transport, base_url="http://portal.bench") as client:
            await log_in(client)
            middle = max(1, math.ceil(total / PAGE_SIZE) // 2)
            asked = {
                "calls_first": "/calls",
                "calls_deep": f"/calls?page={middle}",
                "calls_keyword": "/calls?keyword=12345",
                # a caller name one call in nine has: many matches, in time order
                "calls_keyword_common": "/calls?keyword=Ext%2015",
                "recharges_first": "/recharges",
                "recharges_deep": f"/recharges?page={middle}",
                "recharges_keyword": "/recharges?keyword=Ext%2015",
            }
            for name, path in asked.items():
                times = []
                for _ in range(repeat):
                    start = time.perf_counter()
                    response = await client.get(path)
                    times.append((time.perf_counter() - start) * 1000)
                    assert response.status_code == 200, (path, response.status_code)
                    assert "<tr" in response.text, f"{path}: no rows"
                out[f"{name}_p50_ms"] = stats.median(times)
                out[f"{name}_p95_ms"] = _p95(times)
    finally:
        await ctx.uow.dispose()
    return out


def _p95(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


async def csv_memory(url: str, schema_name: str | None, total: int) -> dict[str, float]:
    """The CSV of every call, downloaded from a portal process of its own."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.portal_server", url, schema_name or "", str(port)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
            for _ in range(600):  # until it listens (it prints nothing we parse)
                try:
                    await client.get("/login")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            await log_in(client)
            await client.get("/calls")  # warm: templates, the first queries
            # Peak RSS from here on: writing 5 to clear_refs resets VmHWM to the current RSS
            # (proc(5)), so what start-up and migrations peaked at is not counted.
            Path(f"/proc/{server.pid}/clear_refs").write_text("5")
            before = _rss_kb(server.pid, "VmRSS")
            start = time.perf_counter()
            rows = 0
            async with client.stream("GET", "/api/calls.csv") as response:
                response.raise_for_status()
                async for chunk in response.aiter_bytes():
                    rows += chunk.count(b"\n")
            seconds = time.perf_counter() - start
            peak = _rss_kb(server.pid, "VmHWM")
    finally:
        server.terminate()
        server.wait(30)
    assert rows == total + 1, f"{rows - 1} rows of {total}"  # and the header
    return {
        "csv_seconds": seconds,
        "csv_rss_before_mb": before / 1024,
        "csv_rss_growth_mb": (peak - before) / 1024,
    }


async def run(backend: str, total: int, repeat: int) -> dict[str, float]:
    async with ledger(backend, total) as (url, schema_name, fill_s):
        out = {"fill_s": fill_s, "records": float(total)}
        out.update(await page_times(url, schema_name, total, repeat))
        out.update(await csv_memory(url, schema_name, total))
    return out


def main(backend: str = "sqlite", total: int = 1_000_000, repeat: int = 20) -> dict[str, float]:
    return asyncio.run(run(backend, total, repeat))


if __name__ == "__main__":
    bench_stats.command_line(main, __doc__, 20)
