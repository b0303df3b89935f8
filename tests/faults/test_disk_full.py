"""The disk fills up under the SQLite ledger, then space is freed: meanwhile authorizations
fail closed (DENY error) and settlements that need room retry, nothing is half-written; once
there is space again every ended call is settled, once. The audit passes throughout.

(Settling a gated call deletes its hold first, and the page that gives back is room for the
call's record: such a call may well settle on a full disk. The call that must wait for room
here is one that never passed the gate, so has no hold to give back.)"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.pool import Pool

from coobill.bootstrap import bootstrap
from coobill.config import Settings
from coobill.services.audit import audit
from coobill.services.context import BillingContext
from coobill.services.extensions import show_extension
from coobill.services.reports import list_calls
from coobill.services.reservations import list_held
from coobill.services.settings import change_settings
from tests.conftest import FakeClock
from tests.fakes.ami_server import FakeAmiServer
from tests.faults.calls import Call, billed
from tests.faults.conftest import start_daemon
from tests.faults.ledger_checks import assert_debited_once, holds_left, integrity

BALANCES = {"100": "50", "101": "50"}
# A long remark makes each hold and each call record (which carry the rate's label) take more
# than half a 512-byte page: every new one needs a page of its own, so none fits on a full disk.
REMARK = "Mobile numbers through carrier A, peak and off-peak alike; " * 3


@pytest.fixture
async def small_page_ctx(
    sqlite_template: Path, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[BillingContext]:
    """The migrated ledger rewritten with 512-byte pages."""
    path = tmp_path / "ledger.db"
    shutil.copy(sqlite_template, path)
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode=DELETE")
        db.execute("PRAGMA page_size=512")
        db.execute("VACUUM")
        db.execute("PRAGMA journal_mode=WAL")
    context = bootstrap(Settings(database={"url": f"sqlite+aiosqlite:///{path}"}), clock=clock)
    await change_settings(context, timezone="UTC")
    yield context
    await context.uow.dispose()


class Disk:
    """The ledger's file on a disk with room for `spare` more pages: every connection of the
    test process is capped there (PRAGMA max_page_count), and a hog (another program's data)
    can fill it."""

    def __init__(self, path: str, spare: int = 400) -> None:
        self.path = path
        with closing(sqlite3.connect(path)) as db:
            self.pages = db.execute("PRAGMA page_count").fetchone()[0] + spare

    def _cap(self, dbapi_connection: Any, _record: Any, _proxy: Any = None) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA max_page_count={self.pages}")
        cursor.close()

    @contextmanager
    def capped(self) -> Iterator[None]:
        event.listen(Pool, "checkout", self._cap)
        try:
            yield
        finally:
            event.remove(Pool, "checkout", self._cap)

    def fill(self) -> None:
        with closing(sqlite3.connect(self.path, isolation_level=None)) as db:
            db.execute(f"PRAGMA max_page_count={self.pages}")
            db.execute("CREATE TABLE IF NOT EXISTS disk_hog (junk BLOB)")
            for size in (400, 100, 10):  # big pieces, then what still fits between them
                try:
                    while True:
                        db.execute("INSERT INTO disk_hog VALUES (zeroblob(?))", (size,))
                except sqlite3.OperationalError as exc:
                    assert "full" in str(exc)  # noqa: PT017 - filled until SQLite says so

    def free(self) -> None:
        with closing(sqlite3.connect(self.path, isolation_level=None)) as db:
            db.execute("DROP TABLE disk_hog")


class TestTheDiskFull:
    async def test_writes_fail_whole_while_the_disk_is_full_and_complete_once_freed(
        self, small_page_ctx: BillingContext, fake_ami: FakeAmiServer
    ) -> None:
        """`early` is settled before the disk fills; `up` and `talking` hold funds; `refused`
        asks while it is full; `stray` (ungated) ends while it is full; `after` calls once
        space is back."""
        ctx = small_page_ctx
        await billed(ctx, BALANCES, remark=REMARK)
        early, up, talking = Call(0, "100", 5), Call(1, "101", 9), Call(2, "100", 4)
        refused, after, stray = Call(3, "101", 6), Call(4, "101", 3), Call(5, "100", 7)
        disk = Disk(str(ctx.uow.engine.url.database))
        with disk.capped():
            daemon = await start_daemon(ctx, fake_ami)
            try:
                for call in (early, up, talking):
                    assert (await call.ask_gate(daemon.gate.port))["COOBILL_RESULT"] == "ALLOW"
                    await fake_ami.send_events(call.begin())
                await fake_ami.send_events(early.end())
                await daemon.events.settled.reached(1)
                before = {n: await show_extension(ctx, n) for n in BALANCES}

                disk.fill()
                verdict = await refused.ask_gate(daemon.gate.port)
                assert (verdict["COOBILL_RESULT"], verdict["COOBILL_REASON"]) == ("DENY", "error")
                await fake_ami.send_events(stray.begin() + stray.end())
                # `stray`'s is the only settlement in flight: the one the full disk refuses
                await ctx.progress.settlement_retries.reached(1)
                # Nothing half-written: no hold for `refused`, `stray` not recorded, not
                # debited; the holds of `up` and `talking` still there; every balance as it was.
                assert {h.uniqueid for h in await list_held(ctx)} == {up.uniqueid, talking.uniqueid}
                assert [c.uniqueid for c in (await list_calls(ctx))[0]] == [early.uniqueid]
                assert {n: await show_extension(ctx, n) for n in BALANCES} == before
                assert (await audit(ctx)).ok

                disk.free()
                await daemon.events.settled.reached(2)
                assert (await after.ask_gate(daemon.gate.port))["COOBILL_LIMIT"] == "600"
                for call in (up, talking, after):
                    frames = call.end() if call is up else call.begin() + call.end()
                    await fake_ami.send_events(frames)
                await daemon.events.settled.reached(5)
            finally:
                await daemon.stop()
        assert await holds_left(ctx) == []
        assert integrity(disk.path) == [("ok",)]
        await assert_debited_once(ctx, [early, up, talking, after, stray], BALANCES)
