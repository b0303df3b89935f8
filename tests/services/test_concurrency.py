"""However many calls an extension places at once, on one daemon or several, it never holds or
spends more than balance + credit, and every call is settled exactly once.

On PostgreSQL the engines have pools, so the gathered calls really run side by side and meet at
the extension's row lock; on SQLite they queue for BEGIN IMMEDIATE.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from decimal import Decimal
from typing import Any

from sqlalchemy import event

from coobill.config import BillingConfig
from coobill.rating import Tariff, cost
from coobill.services import balances, extensions
from coobill.services.audit import audit
from coobill.services.commands import Reason, Verdict
from coobill.services.context import BillingContext
from tests.services.conftest import authorize, ended, make_extension, make_rate, rows, settle

TARIFF = Tariff(Decimal("0.1000"), 60, Decimal("0.0500"), 60)


def capped(ctx: BillingContext, seconds: int) -> BillingContext:
    """The same daemon, allowing calls of at most `seconds` (so one call cannot take all)."""
    billing = BillingConfig(**{**ctx.config.billing.model_dump(), "max_call_seconds": seconds})
    return replace(ctx, config=ctx.config.model_copy(update={"billing": billing}))


async def held_total(ctx: BillingContext) -> Decimal:
    [(units,)] = await rows(ctx, "SELECT coalesce(sum(amount), 0) FROM reservation")
    return Decimal(int(units)) / 10000


@contextmanager
def connections_in_use(ctx: BillingContext) -> Iterator[list[int]]:
    """Records the most connections the daemon's pool had checked out at once."""
    pool = ctx.uow.engine.sync_engine.pool
    state = [0, 0]  # now, peak

    def out(*_: Any) -> None:
        state[0] += 1
        state[1] = max(state[1], state[0])

    def back(*_: Any) -> None:
        state[0] -= 1

    event.listen(pool, "checkout", out)
    event.listen(pool, "checkin", back)
    peak = [0]
    try:
        yield peak
    finally:
        event.remove(pool, "checkout", out)
        event.remove(pool, "checkin", back)
        peak[0] = state[1]


def spent(verdicts: list[Verdict]) -> Decimal:
    return sum((cost(TARIFF, v.limit_seconds or 0) for v in verdicts if v.allowed), Decimal(0))


class TestManyCallsAtOnce:
    async def test_fifty_calls_at_once_hold_no_more_than_balance_plus_credit(
        self, ctx: BillingContext
    ) -> None:
        """Funds 1.6 and calls of at most 300 s (0.30 each): five full calls, one of 60 s for
        the 0.10 left, and every other call denied, whatever order they arrive in."""
        await make_extension(ctx, "100", balance="1.1", credit="0.5")
        await make_rate(ctx, "00")
        gate = capped(ctx, 300)
        with connections_in_use(ctx) as peak:
            verdicts = await asyncio.gather(*(authorize(gate, f"c{i}") for i in range(50)))
        if ctx.uow.dialect == "postgresql":
            assert peak[0] > 1  # the authorizations really ran side by side
        allowed = [v for v in verdicts if v.allowed]
        assert sorted(v.limit_seconds for v in allowed) == [60, 300, 300, 300, 300, 300]
        assert {v.reason for v in verdicts if not v.allowed} == {Reason.NO_FUNDS}
        assert spent(verdicts) == await held_total(ctx) == Decimal("1.6")
        assert sum(v.held for v in allowed) == Decimal("1.6")

    async def test_calls_at_once_from_many_extensions_each_stay_within_their_funds(
        self, ctx: BillingContext
    ) -> None:
        for number in ("100", "101", "102"):
            await make_extension(ctx, number, balance="0.7")
        await make_rate(ctx, "00")
        gate = capped(ctx, 300)
        calls = [(f"c{i}", ("100", "101", "102")[i % 3]) for i in range(45)]
        verdicts = await asyncio.gather(*(authorize(gate, u, ext) for u, ext in calls))
        for number in ("100", "101", "102"):
            mine = [v for (_, ext), v in zip(calls, verdicts, strict=True) if ext == number]
            assert spent(mine) == Decimal("0.7")  # 0.3 + 0.3 + 0.1
            view = await extensions.show_extension(ctx, number)
            assert view.reserved == Decimal("0.7")
            assert view.funds_available == 0

    async def test_the_same_call_settled_at_once_many_times_is_debited_once(
        self, ctx: BillingContext, other_daemon: BillingContext
    ) -> None:
        await make_extension(ctx, "100", balance="10")
        await make_rate(ctx, "00")
        await authorize(ctx, "c1")
        results = await asyncio.gather(
            *(settle(d, ended("c1", billsec=125)) for d in [ctx, other_daemon] * 5)
        )
        assert [r.debited for r in results if r is not None].count(True) == 1
        # 0.1 for the first minute, then 2 periods of 0.05
        assert (await extensions.show_extension(ctx, "100")).balance == Decimal("9.8")
        assert await rows(ctx, "SELECT count(*) FROM call") == [(1,)]
        assert (await audit(ctx)).ok


class TestTwoDaemonsOnOneLedger:
    async def test_calls_authorized_and_settled_by_two_daemons_never_spend_more_than_funds(
        self, ctx: BillingContext, other_daemon: BillingContext
    ) -> None:
        """Each call talks the whole of its limit (the worst case); calls end while others
        start, so the freed funds are spent again; the total never passes balance + credit."""
        await make_extension(ctx, "100", balance="3", credit="1")
        await make_rate(ctx, "00")
        daemons = [capped(ctx, 300), capped(other_daemon, 300)]

        async def call(i: int) -> Decimal:
            daemon = daemons[i % 2]
            verdict = await authorize(daemon, f"c{i}")
            if not verdict.allowed:
                return Decimal(0)
            talked = ended(f"c{i}", billsec=verdict.limit_seconds or 0)
            settlement = await settle(daemons[(i + 1) % 2], talked)  # the other daemon ends it
            assert settlement is not None
            assert settlement.debited
            return settlement.cost

        costs = await asyncio.gather(*(call(i) for i in range(40)))
        view = await extensions.show_extension(ctx, "100")
        assert sum(costs) <= Decimal("4")
        assert view.balance == Decimal("3") - sum(costs)
        assert view.balance + view.credit_limit >= 0
        assert view.reserved == 0
        report = await audit(ctx)
        assert report.ok, report.problems

    async def test_recharges_by_one_daemon_while_the_other_authorizes_are_never_lost(
        self, ctx: BillingContext, other_daemon: BillingContext
    ) -> None:
        await make_extension(ctx, "100")
        await make_rate(ctx, "00")
        gate = capped(other_daemon, 300)
        await asyncio.gather(
            *(balances.recharge(ctx, ["100"], "0.3") for _ in range(20)),
            *(authorize(gate, f"c{i}") for i in range(20)),
        )
        view = await extensions.show_extension(ctx, "100")
        assert view.balance == view.total_recharged == Decimal("6")
        assert view.reserved <= view.balance
        assert (await audit(ctx)).ok
