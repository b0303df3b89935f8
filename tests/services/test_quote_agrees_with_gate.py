"""A quote says what the gate would decide: on any funds and tariff, the limit a quote shows
is the limit the gate allows (0 when the gate says no_funds), and the gate holds its cost."""

from __future__ import annotations

import itertools
from dataclasses import replace
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coobill.config import BillingConfig
from coobill.rating import Tariff, cost
from coobill.services import rates
from coobill.services.commands import Reason
from coobill.services.context import BillingContext
from coobill.services.funds import allowance, funds
from tests.services.conftest import authorize, make_extension, make_rate

examples = itertools.count()

money = st.decimals(min_value=Decimal("0"), max_value=Decimal("20"), places=4)
tariffs = st.builds(
    Tariff,
    initial_cost=st.decimals(min_value=Decimal("0"), max_value=Decimal("2"), places=4),
    initial_seconds=st.integers(0, 120),
    rate=st.decimals(min_value=Decimal("0"), max_value=Decimal("1"), places=4),
    period_seconds=st.integers(1, 120),
)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(balance=money, credit=money, earlier_call=st.booleans(), tariff=tariffs,
       cap=st.integers(1, 20_000))
async def test_a_quote_shows_the_limit_the_gate_allows(
    ctx: BillingContext, balance: Decimal, credit: Decimal, earlier_call: bool, tariff: Tariff,
    cap: int,
) -> None:
    n = next(examples)
    number, prefix = f"7{n:04d}", f"55{n:04d}"  # a fresh extension and rate for each example
    gate = replace(ctx, config=ctx.config.model_copy(
        update={"billing": BillingConfig(max_call_seconds=cap)}))
    await make_extension(ctx, number, balance=str(balance), credit=str(credit))
    await make_rate(ctx, prefix, initial_cost=str(tariff.initial_cost),
                    initial_time=tariff.initial_seconds, rate=str(tariff.rate),
                    period=tariff.period_seconds, extensions=number)
    dialled = f"{prefix}123"
    if earlier_call:  # another live call of the extension holds part of its funds
        await authorize(gate, f"earlier-{n}", number, dialled)

    quoted = await rates.quote(gate, number, dialled)
    verdict = await authorize(gate, f"call-{n}", number, dialled)

    assert quoted.rate is not None
    assert verdict.rate_id == quoted.rate.id
    assert verdict.funds == quoted.funds
    if verdict.allowed:
        assert verdict.reason is Reason.OK
        assert verdict.limit_seconds == quoted.limit_seconds > 0
        assert verdict.held == cost(tariff, quoted.limit_seconds) <= quoted.funds
    else:
        assert verdict.reason is Reason.NO_FUNDS
        assert quoted.limit_seconds == 0


@given(balance=money, credit=money, reserved=money, tariff=tariffs, cap=st.integers(1, 20_000))
def test_what_the_gate_allows_is_within_the_funds_and_buys_no_more(
    balance: Decimal, credit: Decimal, reserved: Decimal, tariff: Tariff, cap: int
) -> None:
    available = funds(balance, credit, reserved)
    decision = allowance(tariff, available, cap)
    assert decision.funds == available == balance + credit - reserved
    if not decision.allowed:
        assert (decision.limit_seconds, decision.held) == (0, 0)
        return
    assert decision.held == cost(tariff, decision.limit_seconds) <= available
    assert decision.limit_seconds <= cap
    if decision.limit_seconds < cap:  # the funds, not the cap, ended it: a second more is too dear
        assert cost(tariff, decision.limit_seconds + 1) > available
