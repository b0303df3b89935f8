"""The account controls through the gate end to end: a fake Asterisk speaking the recorded
FastAGI protocol, the real GateServer, services and ledger (SQLite, and PostgreSQL when
configured). What the channel is told: the capped limit, and the cap's own DENY reason; what
a gated and settled call sends as a webhook and shows on its statement; a fee past the
credit locking the extension the gate then refuses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from functools import partial

import pytest

from coobill.agi.server import GateOptions, GateServer
from coobill.services import fees, statements
from coobill.services.context import BillingContext
from coobill.services.extensions import ExtensionChanges, set_extension, show_extension
from coobill.services.gate import authorize_call
from coobill.services.refused import RefusedLog, list_refused
from coobill.services.settings import change_settings
from tests.conftest import settings_for
from tests.fakes.ami_server import FakeAmiServer, event_frames
from tests.fakes.asterisk_agi import FakeAsterisk
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.integration.daemons import (
    ALICE,
    funded,
    gate_call,
    live_channels,
    start_daemon,
    trace,
)
from tests.integration.test_gate_ledger import billed_extension, call_env, start_gate

# The rate of billed_extension: a 0.20 connection fee, then 0.10 a minute.
SECRET = "integration-webhook-secret-0123"


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    server = WebhookReceiver(SECRET)
    await server.start()
    yield server
    await server.stop()


def hooks(receiver: WebhookReceiver) -> dict[str, object]:
    return {"urls": [receiver.url], "secret": SECRET, "poll_seconds": 0.05}


class TestSpendCapsThroughTheGate:
    async def test_the_limit_is_what_the_daily_cap_leaves_and_then_it_is_cap_daily(
        self, ctx: BillingContext
    ) -> None:
        await billed_extension(ctx, "100")
        await set_extension(ctx, "100", ExtensionChanges(cap_daily="0.5"))
        gate = await start_gate(ctx, ring_allowance_seconds=60)
        try:
            first = await FakeAsterisk(call_env("u-cap-1")).call(gate.port)
            second = await FakeAsterisk(call_env("u-cap-2")).call(gate.port)
        finally:
            await gate.close()
        # 0.50: the fee and 3 minutes.
        assert first.variables == {
            "COOBILL_RESULT": "ALLOW", "COOBILL_REASON": "ok", "COOBILL_LIMIT": "180",
            "COOBILL_DIAL_OPTIONS": "L(180000)",
        }
        assert first.channel.executed == [("Set", "TIMEOUT(absolute)=240")]
        assert second.variables == {
            "COOBILL_RESULT": "DENY", "COOBILL_REASON": "cap_daily", "COOBILL_LIMIT": "",
            "COOBILL_DIAL_OPTIONS": "",
        }
        assert (await show_extension(ctx, "100")).reserved == Decimal("0.5")

    async def test_the_sites_monthly_cap_and_maximum_price_are_their_own_reasons(
        self, ctx: BillingContext
    ) -> None:
        await billed_extension(ctx, "100")
        gate = await start_gate(ctx)
        try:
            await change_settings(ctx, controls={"cap_monthly": "0.1"})
            monthly = await FakeAsterisk(call_env("u-cap-3")).call(gate.port)
            await change_settings(ctx, controls={"cap_monthly": "", "max_price_minute": "0.05"})
            dear = await FakeAsterisk(call_env("u-cap-4")).call(gate.port)
        finally:
            await gate.close()
        assert (monthly.variables["COOBILL_RESULT"], monthly.variables["COOBILL_REASON"]) == (
            "DENY", "cap_monthly")
        assert (dear.variables["COOBILL_RESULT"], dear.variables["COOBILL_REASON"]) == (
            "DENY", "max_price")


class TestRefusedCallsThroughTheGate:
    async def test_each_deny_the_channel_is_told_leaves_a_record_with_its_latency(
        self, ctx: BillingContext
    ) -> None:
        await billed_extension(ctx, "0")  # no funds
        log = RefusedLog(ctx)
        gate = GateServer(partial(authorize_call, ctx), GateOptions(port=0, deadline_seconds=10),
                          on_decision=log.note)
        await gate.start()
        try:
            denied = await FakeAsterisk(call_env("u-refused")).call(gate.port)
            env = dict(call_env("u-bad"))
            env["agi_arg_2"] = "not digits"
            await FakeAsterisk(list(env.items())).call(gate.port)
        finally:
            await gate.close()
        assert denied.variables["COOBILL_REASON"] == "no_funds"
        assert await log.flush() == 2
        records, _ = await list_refused(ctx)
        by_reason = {r.reason: r for r in records}
        assert set(by_reason) == {"no_funds", "bad_request"}
        funds = by_reason["no_funds"]
        assert (funds.extension, funds.number, funds.uniqueid) == ("100", "913800000000",
                                                                   "u-refused")
        assert funds.latency_ms > 0


class TestLowBalanceThroughTheGate:
    async def test_an_allow_below_the_threshold_sets_coobill_low_balance_before_the_result(
        self, ctx: BillingContext
    ) -> None:
        await billed_extension(ctx, "1")
        # Each call holds 0.50 at most; the funds at rest (balance + credit) stay 1.00.
        await set_extension(ctx, "100", ExtensionChanges(max_call_cost="0.5"))
        gate = await start_gate(ctx)
        try:
            above = await FakeAsterisk(call_env("u-low-1")).call(gate.port)
            await set_extension(ctx, "100", ExtensionChanges(low_balance="1.5"))
            below = await FakeAsterisk(call_env("u-low-2")).call(gate.port)
        finally:
            await gate.close()
        assert "COOBILL_LOW_BALANCE" not in above.variables
        assert below.variables["COOBILL_RESULT"] == "ALLOW"
        assert below.variables["COOBILL_LOW_BALANCE"] == "1"
        sent = below.channel.commands
        low = sent.index('SET VARIABLE COOBILL_LOW_BALANCE "1"')
        assert low < sent.index('SET VARIABLE COOBILL_RESULT "ALLOW"')


class TestTheDaemonRecordsWhatItsGateRefused:
    async def test_a_deny_of_the_running_daemon_is_recorded_by_the_time_it_stopped(
        self, ctx: BillingContext, fake_ami: FakeAmiServer
    ) -> None:
        await funded(ctx)
        await set_extension(ctx, "100", ExtensionChanges(locked=True))
        daemon = await start_daemon(ctx, fake_ami)
        try:
            assert daemon.gate is not None
            told = await gate_call(daemon.gate.port, "sip_answered")
        finally:
            await daemon.stop()
        assert (told["COOBILL_RESULT"], told["COOBILL_REASON"]) == ("DENY", "locked")
        [record], _ = await list_refused(ctx)
        assert (record.extension, record.reason) == ("100", "locked")


async def alices_call_gated_and_settled(ctx: BillingContext, fake_ami: FakeAmiServer,
                                        receiver: WebhookReceiver) -> None:
    """The recorded answered call of 100 (6 s at 0.01/s), gated by the running daemon and
    settled from the fake manager's events, each webhook event delivered meanwhile."""
    ctx.config = settings_for(str(ctx.config.database.url), webhooks=hooks(receiver))
    await funded(ctx)  # each extension's recharge: its own event
    fake_ami.live_channels = live_channels({ALICE})  # up while it talks: no hold flagged
    daemon = await start_daemon(ctx, fake_ami, webhooks=hooks(receiver))
    try:
        await fake_ami.next_login()
        assert daemon.gate is not None
        told = await gate_call(daemon.gate.port, "sip_answered")
        assert told["COOBILL_RESULT"] == "ALLOW"
        await fake_ami.send_events(event_frames(trace()))
        await receiver.until(lambda: any(
            r.kind == "call.settled" and r.event["data"]["uniqueid"] == ALICE
            for r in receiver.answered))
    finally:
        await daemon.stop()


class TestWebhooksOfAGatedCall:
    async def test_the_recharge_then_the_settled_call_arrive_signed_with_the_ledgers_figures(
        self, ctx: BillingContext, fake_ami: FakeAmiServer, receiver: WebhookReceiver
    ) -> None:
        await alices_call_gated_and_settled(ctx, fake_ami, receiver)
        assert all(r.signed for r in receiver.received)
        alices = [r for r in receiver.answered if r.extension == "100"]
        assert [r.kind for r in alices[:2]] == ["recharge", "call.settled"]
        settled = alices[1].event["data"]
        view = await show_extension(ctx, "100")
        assert (settled["uniqueid"], settled["billable_seconds"], settled["gated"]) == (
            ALICE, 6, True)
        assert Decimal(settled["cost"]) == Decimal("0.06")
        assert Decimal(settled["balance_after"]) == view.balance == Decimal("49.94")


class TestTheStatementOfAGatedCall:
    async def test_the_month_lists_the_recharge_and_the_call_as_the_ledger_has_them(
        self, ctx: BillingContext, fake_ami: FakeAmiServer, receiver: WebhookReceiver
    ) -> None:
        await alices_call_gated_and_settled(ctx, fake_ami, receiver)
        month = ctx.clock().strftime("%Y-%m")  # the ledger's time zone is UTC here
        st = await statements.statement(ctx, "100", month)
        assert [(line.kind, line.amount) for line in st.lines] == [
            ("recharge", Decimal("50")), ("call", Decimal("-0.06"))]
        assert (st.lines[1].seconds, st.opening, st.closing) == (6, 0, Decimal("49.94"))
        assert st.closing == (await show_extension(ctx, "100")).balance


class TestAFeePastTheCreditThroughTheGate:
    async def test_the_daemon_charges_it_locks_the_extension_and_the_gate_refuses_locked(
        self, ctx: BillingContext, fake_ami: FakeAmiServer, receiver: WebhookReceiver
    ) -> None:
        ctx.config = settings_for(str(ctx.config.database.url), webhooks=hooks(receiver))
        await funded(ctx)
        await fees.add_fee(ctx, "100", "60", name="Line rental")  # 50 of funds
        daemon = await start_daemon(ctx, fake_ami, webhooks=hooks(receiver))
        try:
            await daemon.events.fee_checks.reached(1)
            assert daemon.gate is not None
            told = await gate_call(daemon.gate.port, "sip_answered")
            await receiver.until(lambda: any(r.kind == "extension.locked"
                                             for r in receiver.answered))
        finally:
            await daemon.stop()
        assert (told["COOBILL_RESULT"], told["COOBILL_REASON"]) == ("DENY", "locked")
        view = await show_extension(ctx, "100")
        assert (view.balance, view.locked) == (Decimal("-10"), True)
        kinds = [r.kind for r in receiver.answered if r.extension == "100"]
        assert kinds[:3] == ["recharge", "fee", "extension.locked"]
        fee = next(r for r in receiver.answered if r.kind == "fee").event["data"]
        assert (Decimal(fee["amount"]), fee["over_credit"]) == (Decimal("60"), True)
