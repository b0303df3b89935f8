"""Daemons for the integration tests: the pjsip lab's calls, a funded ledger, the gate asked
as the recording shows, and a daemon started in-process on a fake Asterisk manager."""

from __future__ import annotations

from coobill.config import Settings
from coobill.daemon import Daemon
from coobill.services.balances import recharge
from coobill.services.context import BillingContext
from coobill.services.extensions import ExtensionChanges, set_extension
from coobill.services.rate_fields import check_rate_fields
from coobill.services.rates import add_rate
from tests.fakes.ami_server import PJSIP, FakeAmiServer, Frame, read_trace, reply_frames
from tests.fakes.asterisk_agi import FakeAsterisk, load_trace_env

ALICE = "1795610072.0"  # sip_answered: 6 billable seconds
BOB = "1795610072.2"  # sip_cut_by_limit: 4 billable seconds
WAIT = 20.0


def trace() -> list[Frame]:
    return read_trace(PJSIP / "ami-all.txt")


def live_channels(uniqueids: set[str]) -> list[Frame]:
    recorded = [f for f in reply_frames(trace(), "live") if f.event == "CoreShowChannel"]
    return [f for f in recorded if f.get("Linkedid") in uniqueids]


async def funded(ctx: BillingContext) -> None:
    for ext in ("100", "101", "102"):
        await set_extension(ctx, ext, ExtensionChanges(billing=True))
        await recharge(ctx, [ext], "50")
    await add_rate(ctx, check_rate_fields(prefix="9", number_length=0, initial_cost="0",
                                          initial_seconds=0, rate="0.01", period_seconds=1,
                                          extensions="*"))


async def gate_call(port: int, scenario: str) -> dict[str, str]:
    seen = await FakeAsterisk(load_trace_env(PJSIP / f"agi-{scenario}.txt")).call(port)
    return seen.variables


async def start_daemon(ctx: BillingContext, fake_ami: FakeAmiServer, *,
                       webhooks: dict[str, object] | None = None, **ami: object) -> Daemon:
    settings = Settings(
        database={"url": str(ctx.uow.engine.url)}, agi={"port": 0}, web={"enabled": False},
        ami={"port": fake_ami.port, "secret": "lab-secret", "cdr_events": "on",
             "reconnect_seconds": 0.05, **ami}, webhooks=webhooks or {})
    ctx.config = settings
    daemon = Daemon(settings, ctx=ctx)
    await daemon.start()
    return daemon


