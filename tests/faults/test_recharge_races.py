"""Recharges race with authorizations and settlements on the same extensions, from two daemons
with engines of their own on one ledger (SQLite and PostgreSQL): no recharge is lost, no call
spends funds that were not there, every balance equals its ledger, nothing stays held."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from coobill.config import BillingConfig
from coobill.services.audit import audit
from coobill.services.balances import recharge
from coobill.services.commands import AuthorizeCall, Disposition, Reason, SettleCall
from coobill.services.context import BillingContext
from coobill.services.extensions import show_extension
from coobill.services.gate import authorize_call
from coobill.services.settlement import settle_call
from coobill.storage.tables import LedgerEntry
from tests.faults.calls import billed
from tests.faults.ledger_checks import debits_by_call, holds_left

EXTENSIONS = {"100": "0.5", "101": "0.5"}
CREDIT = Decimal("0.2")
TOP_UP = Decimal("0.1")
CALLS, RECHARGES, PHONES = 60, 30, 5
START = datetime(2026, 11, 22, 14, 25, 0)


def capped(ctx: BillingContext, seconds: int) -> BillingContext:
    """The same daemon, allowing calls of at most `seconds` (so one call cannot take all)."""
    billing = BillingConfig(**{**ctx.config.billing.model_dump(), "max_call_seconds": seconds})
    return replace(ctx, config=ctx.config.model_copy(update={"billing": billing}))


def talked(uniqueid: str, extension: str, billsec: int) -> SettleCall:
    answer = START + timedelta(seconds=3)
    return SettleCall(
        uniqueid=uniqueid, caller_extension=extension, caller_name="", dialled_number="9138000001",
        start=START, answer=answer if billsec else None, end=answer + timedelta(seconds=billsec),
        billable_seconds=billsec,
        disposition=Disposition.ANSWERED if billsec else Disposition.NO_ANSWER,
        trunk="PJSIP/carrier-a-00000001")


class TestRechargesRacingCalls:
    async def test_recharges_racing_calls_are_never_lost_and_never_overdrawn(
        self, ctx: BillingContext, other_ctx: BillingContext
    ) -> None:
        """Five phones per extension place calls one after another, each authorized by one
        daemon and settled by the other, most talking their whole limit (the worst case for
        the funds), while a cashier per extension recharges it. Every debit leaves the balance
        at or above minus the credit limit."""
        await billed(ctx, EXTENSIONS, credit=str(CREDIT))
        daemons = [capped(ctx, 30), capped(other_ctx, 30)]
        draw = random.Random(7)
        reasons: list[Reason] = []
        caller_of: dict[str, str] = {}

        async def phone(extension: str, n: int) -> None:
            """Places calls one after another, alternating daemons."""
            for k in range(CALLS // len(EXTENSIONS) // PHONES):
                uniqueid, i = f"race-{extension}-{n}-{k}", n + k
                caller_of[uniqueid] = extension
                verdict = await authorize_call(
                    daemons[i % 2], AuthorizeCall(uniqueid, extension, "9138000001", "PJSIP/x"))
                reasons.append(verdict.reason)
                if verdict.allowed:
                    assert verdict.limit_seconds is not None
                    billsec = int(verdict.limit_seconds * draw.choice([1.0, 1.0, 0.5, 0.0]))
                    settled = await settle_call(daemons[(i + 1) % 2],
                                                talked(uniqueid, extension, billsec))
                    assert settled is not None
                    assert settled.debited

        async def cashier(extension: str) -> None:
            for i in range(RECHARGES // len(EXTENSIONS)):
                await recharge(daemons[i % 2], [extension], TOP_UP)

        await asyncio.gather(*(phone(ext, n) for ext in EXTENSIONS for n in range(PHONES)),
                             *(cashier(ext) for ext in EXTENSIONS))

        assert set(reasons) <= {Reason.OK, Reason.NO_FUNDS}
        # Each extension's first funds buy two full calls; the calls want more than ever comes.
        assert reasons.count(Reason.OK) >= 4
        assert reasons.count(Reason.NO_FUNDS) > 0
        debits = await debits_by_call(ctx)
        assert all(n == 1 for n, _ in debits.values())
        for number, first in EXTENSIONS.items():
            view = await show_extension(ctx, number)
            recharged = Decimal(first) + TOP_UP * (RECHARGES // 2)
            spent = sum((d for uid, (_, d) in debits.items() if caller_of[uid] == number),
                        Decimal(0))
            assert view.total_recharged == recharged, number
            assert view.balance == recharged - spent, number
            assert spent <= recharged + CREDIT, number
            assert view.reserved == 0, number
        async with ctx.uow() as uow:
            after_debits = (await uow.session.execute(
                select(LedgerEntry.balance_after).where(LedgerEntry.kind == "call_debit"),
            )).scalars()
            assert min(after_debits) >= -CREDIT
        assert await holds_left(ctx) == []
        report = await audit(ctx)
        assert report.ok, report.problems
