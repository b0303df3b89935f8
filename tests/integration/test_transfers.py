"""Issue 13, scenario 11: outbound calls the caller transfers to an internal extension
(BlindTransfer, a Redirect of the external leg, an attended transfer with *2), recorded in
lab-23.4.1-transfer. The policy (its expected.json): the whole time the external leg is
answered is charged to the extension that placed the call, at its authorization's tariff, as
one record keyed by the gated channel's uniqueid; the target pays nothing; the hold lives until
the external leg hangs up; the limit still holds.

The gate is asked as the recorded dialplan asks it; the AMI stream is the recording, with
Asterisk's Timestamps (manager.conf timestampevents = yes): the stream is sent at once, so the
talk after a transfer - which no Cdr of the gated channel holds - is measured on Asterisk's
clock, as it is measured on ours when events arrive as they happen."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from coobill.services.audit import audit
from coobill.services.balances import recharge
from coobill.services.context import BillingContext
from coobill.services.extensions import (
    ExtensionChanges,
    ensure_extensions,
    set_extension,
    show_extension,
)
from coobill.services.rate_fields import check_rate_fields
from coobill.services.rates import add_rate
from coobill.services.reports import list_calls
from tests.ami.conftest import capture_start
from tests.fakes.ami_server import (
    BASIC,
    TRANSFER,
    FakeAmiServer,
    event_frames,
    read_trace,
    with_timestamps,
)
from tests.fakes.asterisk_agi import FakeAsterisk, load_trace_env
from tests.faults.ledger_checks import holds_left
from tests.integration.daemons import start_daemon

EXPECTED = json.loads((TRANSFER / "expected.json").read_text())
CALLS: dict[str, dict[str, Any]] = EXPECTED["calls"]


def gated_dial(uniqueid: str) -> dict[str, str]:
    """The gated channel's DialBegin in the recording: its name, caller and extension."""
    for frame in event_frames(read_trace(TRANSFER / "ami-all.txt")):
        if frame.event == "DialBegin" and frame.get("Uniqueid") == uniqueid:
            return {"channel": frame.get("Channel"), "caller": frame.get("CallerIDNum"),
                    "exten": frame.get("Exten")}
    raise AssertionError(f"no DialBegin of {uniqueid}")


def agi_env(call: dict[str, Any]) -> list[tuple[str, str]]:
    """The FastAGI request Asterisk sends for the gated channel (the basic lab's, this
    channel's ids): AGI(agi://…/authorize,${CALLERID(num)},${EXTEN}) on a Local ;2 half."""
    dial = gated_dial(call["uniqueid"])
    env = dict(load_trace_env(BASIC / "agi-answered_limit_not_reached.txt"))
    env.update(agi_channel=dial["channel"], agi_uniqueid=call["uniqueid"],
               agi_callerid=dial["caller"], agi_context="xfer-phones",
               agi_extension=dial["exten"], agi_arg_1=dial["caller"], agi_arg_2=dial["exten"])
    return list(env.items())


def balance_for(limit_seconds: int) -> Decimal:
    """What buys exactly `limit_seconds` at the lab's rate (0.20 for 2 s, then 0.10 a second)."""
    return Decimal("0.20") + Decimal("0.10") * (limit_seconds - 2)


async def ledger_for_the_lab(ctx: BillingContext) -> None:
    rate = EXPECTED["rate"]
    await add_rate(ctx, check_rate_fields(
        prefix=rate["prefix"], number_length=rate["length"], initial_cost=rate["initial_cost"],
        initial_seconds=rate["initial_time"], rate=rate["rate"], period_seconds=rate["period"],
        extensions="*"))
    for call in CALLS.values():
        await set_extension(ctx, call["caller"], ExtensionChanges(billing=True))
        await recharge(ctx, [call["caller"]], balance_for(call["limit_seconds"]))
    # The transfer targets are the PBX's own phones (billing off): calls to them are internal.
    await ensure_extensions(ctx, [(call["target"], "") for call in CALLS.values()])


@pytest.fixture
async def settled(ctx: BillingContext, fake_ami: FakeAmiServer) -> dict[str, Any]:
    """The lab replayed through the daemon; what it recorded, by uniqueid."""
    await ledger_for_the_lab(ctx)
    daemon = await start_daemon(ctx, fake_ami, cdr_events="on")
    try:
        await fake_ami.next_login()
        await daemon.events.reconciled.reached(1)
        for name, call in CALLS.items():
            seen = await FakeAsterisk(agi_env(call)).call(daemon.gate.port)  # type: ignore[union-attr]
            assert seen.variables["COOBILL_RESULT"] == "ALLOW", name
            assert seen.variables["COOBILL_LIMIT"] == str(call["limit_seconds"]), name
        frames = read_trace(TRANSFER / "ami-all.txt")
        await fake_ami.send_events(with_timestamps(event_frames(frames), capture_start(frames)))
        await daemon.events.settled.reached(len(CALLS))
    finally:
        await daemon.stop()
    return {c.uniqueid: c for c in (await list_calls(ctx))[0]}


@pytest.mark.parametrize("name", list(CALLS))
async def test_the_whole_external_talk_is_charged_once_to_the_caller(
    name: str, ctx: BillingContext, settled: dict[str, Any]
) -> None:
    call = CALLS[name]
    record = settled[call["uniqueid"]]
    assert record.extension == call["caller"]
    assert record.gated
    assert record.cost == Decimal(call["expected_cost"]), name
    assert record.billable_seconds <= call["limit_seconds"]
    assert [c for c in settled.values() if c.uniqueid == call["uniqueid"]] == [record]
    spent = Decimal(call["expected_cost"])
    caller = await show_extension(ctx, call["caller"])
    assert (caller.balance, caller.reserved) == (balance_for(call["limit_seconds"]) - spent, 0)


async def test_the_targets_pay_nothing_and_nothing_is_left_held(
    ctx: BillingContext, settled: dict[str, Any]
) -> None:
    assert {c.extension for c in settled.values()} == {c["caller"] for c in CALLS.values()}
    for call in CALLS.values():
        target = await show_extension(ctx, call["target"])
        assert target.balance == 0
    assert await holds_left(ctx) == []
    report = await audit(ctx)
    assert report.ok, report.problems
