"""The recorded calls, end to end: each gated call asks the real gate (FastAGI, as recorded),
the recorded AMI stream is replayed by a fake Asterisk manager, and the daemon settles on the
real ledger. The ledger must then hold Asterisk's own truth (expected.json): billsec,
disposition, trunk, and one debit per answered gated call."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import String, cast, func, select

from coobill.config import Settings
from coobill.daemon import Daemon
from coobill.rating import Tariff, cost
from coobill.services.audit import audit
from coobill.services.balances import recharge
from coobill.services.context import BillingContext
from coobill.services.extensions import ExtensionChanges, set_extension, show_extension
from coobill.services.rate_fields import check_rate_fields
from coobill.services.rates import add_rate
from coobill.services.reports import list_calls
from coobill.storage.tables import Call, LedgerEntry
from tests.fakes.ami_server import BASIC, PJSIP, FakeAmiServer, event_frames, read_trace
from tests.fakes.asterisk_agi import FakeAsterisk, load_trace_env

TARIFF = Tariff(Decimal("0.2"), 0, Decimal("0.1"), 6)


def scenarios(lab: Path) -> dict[str, dict[str, Any]]:
    return json.loads((lab / "expected.json").read_text())


async def prepare_ledger(ctx: BillingContext, lab: Path) -> None:
    for ext in sorted({s["caller"] for s in scenarios(lab).values()}):
        await set_extension(ctx, ext, ExtensionChanges(billing=True))
        await recharge(ctx, [ext], "1000")
    await add_rate(ctx, check_rate_fields(
        prefix="9", number_length=0, initial_cost="0.2", initial_seconds=0, rate="0.1",
        period_seconds=6, extensions="*"))


@pytest.fixture
async def fake_ami() -> Any:
    server = await FakeAmiServer(secret="lab-secret").start()
    yield server
    await server.close()


@pytest.mark.parametrize("lab", [BASIC, PJSIP], ids=["basic", "pjsip"])
async def test_the_ledger_holds_asterisks_truth_after_a_replay(
    lab: Path, ctx: BillingContext, fake_ami: FakeAmiServer
) -> None:
    await prepare_ledger(ctx, lab)
    settings = Settings(
        database={"url": str(ctx.uow.engine.url)},
        agi={"port": 0}, web={"enabled": False},
        ami={"host": "127.0.0.1", "port": fake_ami.port, "username": "coobill",
             "secret": "lab-secret", "cdr_events": "on", "reconnect_seconds": 0.05,
             "cdr_grace_seconds": 0.2},
    )
    ctx.config = settings
    daemon = Daemon(settings, ctx=ctx)
    await daemon.start()
    try:
        await fake_ami.next_login()
        expected = scenarios(lab)
        for name, truth in expected.items():
            seen = await FakeAsterisk(load_trace_env(lab / f"agi-{name}.txt")).call(
                daemon.gate.port
            )
            if truth["gate"] == "ALLOW":
                assert seen.variables["COOBILL_RESULT"] == "ALLOW", name
        # The lab's stand-in refused the "denied" calls; our gate allows them (the caller is
        # funded), but they never Dial: no call record, no debit, and their hold is released
        # once their channel has ended (its CDR shows no Dial). Every channel is settled once.
        await fake_ami.send_events(event_frames(read_trace(lab / "ami-all.txt")))
        await daemon.events.settled.reached(len(expected))
    finally:
        await daemon.stop()

    calls = {c.uniqueid: c for c in (await list_calls(ctx))[0]}
    for name, truth in expected.items():
        if not truth["dialled"]:
            assert truth["uniqueid"] not in calls, name
            continue
        call = calls[truth["uniqueid"]]
        assert call.billable_seconds == truth["billsec"], name
        assert call.disposition == truth["disposition"], name
        assert call.gated, name
        assert call.number == truth["number"], name
        if "trunk" in truth:
            assert call.trunk == truth["trunk"], name
        expected_cost = cost(TARIFF, truth["billsec"]) if truth["disposition"] == "ANSWERED" else 0
        assert call.cost == expected_cost, name

    async with ctx.uow() as uow:
        debits = (
            (
                await uow.session.execute(
                    select(Call.uniqueid, func.count())
                    .join(LedgerEntry, LedgerEntry.reference == "call:" + cast(Call.id, String))
                    .where(LedgerEntry.kind == "call_debit")
                    .group_by(Call.uniqueid)
                )
            )
            .tuples()
            .all()
        )
    answered = {s["uniqueid"] for s in expected.values() if s.get("disposition") == "ANSWERED"}
    assert dict(debits) == dict.fromkeys(answered, 1)
    for ext in {s["caller"] for s in expected.values() if s["dialled"]}:
        spent = sum(
            cost(TARIFF, s["billsec"])
            for s in expected.values()
            if s["caller"] == ext and s.get("disposition") == "ANSWERED"
        )
        view = await show_extension(ctx, ext)
        assert view.balance == Decimal("1000") - spent, ext
    # The calls that never dialled gave their holds back; nothing is left held.
    for s in expected.values():
        assert (await show_extension(ctx, s["caller"])).reserved == 0, s["caller"]
    report = await audit(ctx)
    assert report.ok, report.problems
