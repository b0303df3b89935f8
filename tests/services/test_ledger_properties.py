"""Properties of any sequence of recharges, calls and corrections on one extension.

Whatever the order: the audit passes, the balance is exactly what the operations say, and a
gated call never takes balance + credit below zero (or lower, when a correction already did).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coobill.config import BillingConfig
from coobill.services import balances, extensions
from coobill.services.audit import audit
from coobill.services.context import BillingContext
from tests.services.conftest import authorize, ended, make_extension, make_rate, settle

examples = itertools.count()

amounts = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("5"), places=4)


@dataclass(frozen=True)
class Recharge:
    amount: Decimal


@dataclass(frozen=True)
class Adjust:
    amount: Decimal


@dataclass(frozen=True)
class Authorize:
    pass


@dataclass(frozen=True)
class Settle:
    which: int  # which live call ends
    share: float  # the part of its limit it talked (0: unanswered)


operations = st.lists(
    st.one_of(
        st.builds(Recharge, amounts),
        st.builds(Adjust, amounts.map(lambda a: -a) | amounts),
        st.just(Authorize()),
        st.builds(Settle, st.integers(0, 10), st.sampled_from([0.0, 1.0]) | st.floats(0, 1)),
    ),
    max_size=25,
)


async def funds_available(ctx: BillingContext, number: str) -> Decimal:
    return (await extensions.show_extension(ctx, number)).funds_available


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ops=operations, credit=st.sampled_from(["0", "0.5", "3"]))
async def test_any_sequence_keeps_the_ledger_exact_and_gated_calls_within_funds(
    ctx: BillingContext, ops: list[object], credit: str
) -> None:
    number = f"9{next(examples):04d}"  # a fresh extension for each example, on the same ledger
    gate = replace(
        ctx, config=ctx.config.model_copy(
            update={"billing": BillingConfig(max_call_seconds=600)}
        ),
    )
    if not await _has_rate(ctx):
        await make_rate(ctx, "00", initial_cost="0.1", initial_time=30, rate="0.0333", period=7)
    await make_extension(ctx, number, credit=credit)
    expected = Decimal(0)
    live: list[tuple[str, int]] = []
    for step, op in enumerate(ops):
        before = await funds_available(ctx, number)
        match op:
            case Recharge(amount):
                await balances.recharge(ctx, [number], amount)
                expected += amount
            case Adjust(amount):
                await balances.adjust(ctx, number, amount)
                expected += amount
            case Authorize():
                uniqueid = f"{number}-{step}"
                verdict = await authorize(gate, uniqueid, number)
                if verdict.allowed:
                    assert verdict.held <= before
                    live.append((uniqueid, verdict.limit_seconds or 0))
                assert await funds_available(ctx, number) >= min(before, Decimal(0))
            case Settle(which, share) if live:
                uniqueid, limit = live.pop(which % len(live))
                billsec = int(limit * share)
                settlement = await settle(ctx, ended(uniqueid, extension=number, billsec=billsec))
                assert settlement is not None
                assert settlement.debited
                expected -= settlement.cost
                assert await funds_available(ctx, number) >= before
        view = await extensions.show_extension(ctx, number)
        assert view.balance == expected
    report = await audit(ctx)
    assert report.ok, report.problems


async def _has_rate(ctx: BillingContext) -> bool:
    from coobill.services.rates import list_rates

    return bool(await list_rates(ctx))
