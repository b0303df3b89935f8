"""Exports read a batch at a time (reports.iter_calls, iter_recharges) and find exactly what
the paged lists find, in the same order: ties in time, calls without a start, filters."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from coobill.services import reports
from coobill.services.balances import recharge
from coobill.services.context import BillingContext
from coobill.storage.tables import Call
from tests.services.conftest import make_extension

T0 = datetime(2026, 11, 20, 9, 0)


async def calls(ctx: BillingContext, count: int) -> None:
    """`count` call records: three share each start (ties broken by id), every seventh has
    no start (a CDR without one), callers 100 and 101."""
    async with ctx.uow() as uow:
        for i in range(count):
            start = None if i % 7 == 3 else T0 + timedelta(minutes=i // 3)
            uow.session.add(Call(
                uniqueid=f"17000.{i}", caller_extension="100" if i % 2 else "101",
                caller_name="", dialled_number=f"9{i:06d}", start=start, answer=start,
                end=start, billable_seconds=i, trunk="t", rate_label="", cost=Decimal(0),
                disposition="ANSWERED", gated=False))
        await uow.commit()


async def exported(batches: object) -> list[object]:
    out: list[object] = []
    async for batch in batches:  # type: ignore[attr-defined]
        assert 0 < len(batch) <= 4
        out += batch
    return out


class TestCallsExport:
    async def test_every_call_in_the_pages_order_across_batches(self, ctx: BillingContext) -> None:
        await calls(ctx, 23)
        listed, total = await reports.list_calls(ctx)
        assert total == 23
        # undated where the database sorts NULL: last on SQLite, first on PostgreSQL
        undated = listed[0] if ctx.uow.dialect == "postgresql" else listed[-1]
        assert undated.start is None
        assert await exported(reports.iter_calls(ctx, batch=4)) == listed

    async def test_the_same_filters(self, ctx: BillingContext) -> None:
        await calls(ctx, 23)
        period = reports.Period.parse("2026-11-20", "2026-11-20")
        for keyword, extensions in ((None, ("100",)), ("00001", ()), ("101", ())):
            listed, _ = await reports.list_calls(ctx, period, keyword, extensions=extensions)
            assert listed
            assert await exported(reports.iter_calls(
                ctx, period, keyword, extensions=extensions, batch=4)) == listed

    async def test_nothing_found_is_no_batch(self, ctx: BillingContext) -> None:
        await calls(ctx, 5)
        assert await exported(reports.iter_calls(ctx, keyword="nothing-like-it")) == []


class TestRechargesExport:
    async def test_every_recharge_newest_first_across_batches(self, ctx: BillingContext) -> None:
        await make_extension(ctx, "100", name="Alice")
        await make_extension(ctx, "101", name="Bob")
        for n in range(9):  # the clock stands still: every recharge at the same time
            await recharge(ctx, ["100", "101"], str(n + 1))
        listed, total = await reports.list_recharges(ctx)
        assert total == 18
        assert await exported(reports.iter_recharges(ctx, batch=4)) == listed
        bob, _ = await reports.list_recharges(ctx, keyword="bob")
        assert await exported(reports.iter_recharges(ctx, keyword="bob", batch=4)) == bob
