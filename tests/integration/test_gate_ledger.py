"""The gate end to end: a fake Asterisk speaking the recorded FastAGI protocol, the real
GateServer, the real service layer and ledger (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal
from functools import partial

from coobill.agi.server import GateOptions, GateServer
from coobill.money import ZERO
from coobill.rating import Tariff, cost
from coobill.services.balances import recharge
from coobill.services.context import BillingContext
from coobill.services.extensions import ExtensionChanges, set_extension, show_extension
from coobill.services.gate import authorize_call
from coobill.services.rate_fields import check_rate_fields
from coobill.services.rates import add_rate
from coobill.services.settings import change_settings
from tests.fakes.asterisk_agi import TRACES_DIR, FakeAsterisk, load_trace_env

TRACE = TRACES_DIR / "lab-23.4.1-basic" / "agi-answered_limit_not_reached.txt"
TARIFF = Tariff(Decimal("0.2"), 0, Decimal("0.1"), 60)


def call_env(
    uniqueid: str, ext: str = "100", number: str = "913800000000"
) -> list[tuple[str, str]]:
    env = dict(load_trace_env(TRACE))
    env.update(agi_uniqueid=uniqueid, agi_arg_1=ext, agi_arg_2=number, agi_callerid=ext)
    return list(env.items())


async def billed_extension(ctx: BillingContext, balance: str, credit: str = "0") -> None:
    await set_extension(
        ctx, "100", ExtensionChanges(name="Alice", billing=True, credit_limit=Decimal(credit))
    )
    if Decimal(balance):
        await recharge(ctx, ["100"], balance)
    await add_rate(
        ctx,
        check_rate_fields(
            prefix="9",
            number_length=0,
            initial_cost="0.2",
            initial_seconds=0,
            rate="0.1",
            period_seconds=60,
            extensions="100",
        ),
    )


async def start_gate(ctx: BillingContext, **options: object) -> GateServer:
    gate = GateServer(
        partial(authorize_call, ctx), replace(GateOptions(port=0, deadline_seconds=10.0), **options)
    )  # type: ignore[arg-type]
    await gate.start()
    return gate


class TestTheGateAgainstTheLedger:
    async def test_a_funded_call_is_allowed_with_the_limit_its_funds_buy(
        self, ctx: BillingContext
    ) -> None:
        """1.00 buys the 0.20 connection fee and 8 minutes at 0.10 a minute."""
        await billed_extension(ctx, "1")
        gate = await start_gate(ctx, ring_allowance_seconds=60)
        try:
            seen = await FakeAsterisk(call_env("1795357552.31")).call(gate.port)
        finally:
            await gate.close()
        assert seen.variables == {
            "COOBILL_RESULT": "ALLOW",
            "COOBILL_REASON": "ok",
            "COOBILL_LIMIT": "480",
            "COOBILL_DIAL_OPTIONS": "L(480000)",
        }
        assert seen.channel.executed == [("Set", "TIMEOUT(absolute)=540")]
        assert (await show_extension(ctx, "100")).reserved == cost(TARIFF, 480)

    async def test_a_locked_extension_is_denied_whatever_its_balance(
        self, ctx: BillingContext
    ) -> None:
        await billed_extension(ctx, "100")
        await set_extension(ctx, "100", ExtensionChanges(locked=True))
        gate = await start_gate(ctx)
        try:
            seen = await FakeAsterisk(call_env("u-locked")).call(gate.port)
        finally:
            await gate.close()
        assert seen.variables["COOBILL_RESULT"] == "DENY"
        assert seen.variables["COOBILL_REASON"] == "locked"
        assert seen.variables["COOBILL_DIAL_OPTIONS"] == ""

    async def test_billing_off_allows_without_a_limit(self, ctx: BillingContext) -> None:
        await billed_extension(ctx, "0")
        await change_settings(ctx, billing="off")
        gate = await start_gate(ctx)
        try:
            seen = await FakeAsterisk(call_env("u-off")).call(gate.port)
        finally:
            await gate.close()
        assert seen.variables["COOBILL_RESULT"] == "ALLOW"
        assert seen.variables["COOBILL_REASON"] == "unbilled"
        assert seen.variables["COOBILL_LIMIT"] == ""
        assert not any("TIMEOUT" in c for c in seen.commands)

    async def test_fifty_simultaneous_calls_never_hold_more_than_the_funds(
        self, ctx: BillingContext
    ) -> None:
        await billed_extension(ctx, "3.5", credit="1.5")
        funds = Decimal("5.0")
        gate = await start_gate(ctx)
        try:
            calls = [FakeAsterisk(call_env(f"1795357552.{n}")).call(gate.port) for n in range(50)]
            seen = await asyncio.gather(*calls)
        finally:
            await gate.close()
        allowed = [c.variables for c in seen if c.variables["COOBILL_RESULT"] == "ALLOW"]
        denied = [c.variables for c in seen if c.variables["COOBILL_RESULT"] == "DENY"]
        assert allowed
        assert len(allowed) + len(denied) == 50
        assert {d["COOBILL_REASON"] for d in denied} <= {"no_funds"}
        limits = [int(v["COOBILL_LIMIT"]) for v in allowed]
        assert sum(cost(TARIFF, s) for s in limits) <= funds
        view = await show_extension(ctx, "100")
        assert ZERO < view.reserved <= funds
        assert view.reserved == sum(cost(TARIFF, s) for s in limits)
