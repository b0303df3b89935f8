"""The daemon is killed with SIGKILL while it settles a call, and started again: whether the
debit had committed or not, the call ends up debited exactly once (from the Cdr sent again,
or from Asterisk's CDR store at the reconnect), and the SQLite ledger is intact."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from coobill.bootstrap import bootstrap
from coobill.config import Settings
from coobill.services.context import BillingContext
from coobill.services.settings import change_settings
from tests.conftest import FakeClock
from tests.fakes.ami_server import FakeAmiServer
from tests.faults.calls import Call, billed
from tests.faults.ledger_checks import assert_debited_once, integrity
from tests.integration.daemon_process import DaemonProcess

BALANCES = {"100": "50", "101": "50", "102": "50"}


@pytest.fixture
async def sqlite_ctx(
    sqlite_template: Path, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[BillingContext]:
    """A ledger in a SQLite file, which a `coobill run` process can be pointed at."""
    path = tmp_path / "ledger.db"
    shutil.copy(sqlite_template, path)
    context = bootstrap(Settings(database={"url": f"sqlite+aiosqlite:///{path}"}), clock=clock)
    await change_settings(context, timezone="UTC")
    yield context
    await context.uow.dispose()


def daemon_env(ctx: BillingContext, fake_ami: FakeAmiServer, master_csv: Path) -> dict[str, str]:
    return {**os.environ, "COOBILL_DATABASE__URL": str(ctx.uow.engine.url),
            "COOBILL_AGI__PORT": "0", "COOBILL_WEB__ENABLED": "false",
            "COOBILL_AMI__PORT": str(fake_ami.port), "COOBILL_AMI__SECRET": "lab-secret",
            "COOBILL_AMI__CDR_EVENTS": "on", "COOBILL_AMI__RECONNECT_SECONDS": "0.05",
            "COOBILL_AMI__CDR_GRACE_SECONDS": "0.2", "COOBILL_AMI__CDR_CSV_PATH": str(master_csv),
            "COOBILL_BILLING__MAX_CALL_SECONDS": "600", "COOBILL_LOG__LEVEL": "INFO"}


class TestTheDaemonKilledMidSettlement:
    async def test_calls_whose_settlement_was_cut_by_sigkill_are_debited_once_after_restart(
        self, sqlite_ctx: BillingContext, fake_ami: FakeAmiServer, tmp_path: Path
    ) -> None:
        """The kill comes the moment the first daemon logs the debit of `cut`, inside its
        transaction: the commit may or may not have happened. `queued` had ended just after.
        The second daemon settles `queued` from the CDR store when it reconciles (its channel
        is gone); `cut`, if its commit was lost, is flagged there, then settled from its Cdr
        when the stream is sent again. The stream sent once more debits nothing."""
        ctx = sqlite_ctx
        await billed(ctx, BALANCES)
        cut, queued = Call(0, "100", 7), Call(1, "101", 11)
        up = [Call(2, "102", 4), Call(3, "100", 9)]
        master = tmp_path / "Master.csv"
        master.write_text(queued.master_csv_row())
        env = daemon_env(ctx, fake_ami, master)

        first = DaemonProcess(env)
        await first.start()
        await fake_ami.next_login()
        await first.until(lambda status: status.reconciled >= 1)
        for call in [cut, queued, *up]:
            assert (await call.ask_gate(first.gate_port))["COOBILL_RESULT"] == "ALLOW"
            await fake_ami.send_events(call.begin())
        await fake_ami.send_events(cut.end() + queued.end())
        await first.until_logged(f"settlement.debit uniqueid={cut.uniqueid}")
        await first.kill()

        fake_ami.live_channels = [c.live() for c in up]
        second = DaemonProcess(env)
        await second.start()
        await fake_ami.next_login()
        await second.until(lambda status: status.reconciled >= 1)
        for call in [cut, queued, *up]:  # Asterisk's stream as a replay would send it again
            await fake_ami.send_events(call.begin() + call.end())
        # every channel of the stream handed to settlement and done (each ended channel
        # counts once, whether its call was debited now or before)
        await second.until(lambda status: status.settled >= len([cut, queued, *up]))
        await fake_ami.send_events(e for c in [cut, queued, *up] for e in c.begin() + c.end())
        assert await second.terminate() == 0

        assert integrity(str(ctx.uow.engine.url.database)) == [("ok",)]
        await assert_debited_once(ctx, [cut, queued, *up], BALANCES)
