"""Statistics by trunk: calls, talk time, revenue (what the calls were sold for), what they
cost on their trunks (their buy cost) and the margin between the two.

The margin counts only the calls whose buy cost is known (a trunk with a buy rate,
services/margin.py): a call without one has no margin to tell, rather than all its revenue
as margin."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import BigInteger, case, func, select, type_coerce

from coobill.money import from_units
from coobill.services.context import BillingContext
from coobill.services.reports.period import Period, within
from coobill.storage.tables import Call


@dataclass(frozen=True, slots=True)
class TrunkRow:
    trunk: str
    calls: int
    answered: int
    total_seconds: int
    revenue: Decimal
    buy_cost: Decimal
    margin: Decimal


async def trunk_statistics(ctx: BillingContext, period: Period = Period(),
                           extensions: Sequence[str] = ()) -> list[TrunkRow]:
    """One row per trunk the period's calls left on (in name order; "" for none)."""
    units = BigInteger
    cost = type_coerce(Call.cost, units)
    bought = type_coerce(Call.buy_cost, units)
    answered = func.sum((Call.billable_seconds > 0).cast(type_=Call.billable_seconds.type))
    query = within(select(
        Call.trunk, func.count(), answered, func.sum(Call.billable_seconds), func.sum(cost),
        func.sum(bought), func.sum(case((Call.buy_cost.is_not(None), cost - bought))),
    ), Call.start, period)
    if extensions:
        query = query.where(Call.caller_extension.in_(list(extensions)))
    query = query.group_by(Call.trunk).order_by(Call.trunk)
    async with ctx.uow.read() as uow:
        rows = (await uow.session.execute(query)).tuples().all()
    return [TrunkRow(trunk, int(n), int(a or 0), int(s or 0), from_units(int(r or 0)),
                     from_units(int(b or 0)), from_units(int(m or 0)))
            for trunk, n, a, s, r, b, m in rows]
