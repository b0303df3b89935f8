"""Adversarial review of the webhook outbox (issue 18): each extension's events in order on
PostgreSQL, where ids are taken at INSERT and made visible at COMMIT. An event whose
transaction did not hold its extension's row could take an id before a later event's and
commit after it: the sender, seeing the later one as the extension's oldest undelivered
event, sent it first."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from coobill.services import outbox
from coobill.services.context import BillingContext
from tests.conftest import ON_POSTGRESQL_ONLY, settings_for
from tests.services.conftest import authorize, ended, make_extension, make_rate, settle


async def waiting_behind(ctx: BillingContext, blocker: int) -> int:
    """How many backends wait, directly or behind another waiter, on `blocker`."""
    async with ctx.uow.read() as uow:
        waits = [(int(pid), {int(b) for b in by}) for pid, by in (await uow.session.execute(text(
            "SELECT pid, pg_blocking_pids(pid) FROM pg_stat_activity "
            "WHERE cardinality(pg_blocking_pids(pid)) > 0"))).tuples()]
    behind = {blocker}
    while True:
        more = {pid for pid, by in waits if by & behind} - behind
        if not more:
            return len(behind) - 1
        behind |= more


async def until(predicate, seconds: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(seconds):
        # Another backend's lock wait: nothing here can signal it.
        while not await predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


class TestEventsOfOneExtensionInOrder:
    @ON_POSTGRESQL_ONLY  # SQLite has one writer at a time: nothing to interleave
    async def test_an_event_committed_later_never_shows_before_an_earlier_one(
        self, ctx: BillingContext
    ) -> None:
        ctx.config = settings_for(str(ctx.config.database.url), webhooks={
            "urls": ["http://127.0.0.1:9/"], "secret": "s" * 16})
        await make_extension(ctx, "100", balance="10")
        await make_rate(ctx, "00")
        assert (await authorize(ctx, "gated")).allowed
        before = {e.id for e in await outbox.list_events(ctx)}

        # Something else holds extension 100's row (a recharge, the gate) for a while.
        async with ctx.uow.engine.connect() as blocker:
            await blocker.execute(text("SELECT id FROM extension WHERE number = '100' FOR UPDATE"))
            pid = int((await blocker.execute(text("SELECT pg_backend_pid()"))).scalar_one())
            # The gated call ends unanswered: its settlement writes call.settled, then waits
            # to give the hold back to the row.
            first = asyncio.create_task(settle(ctx, ended("gated")))
            await until(lambda: _at_least(ctx, pid, 1))
            # An ungated call of 100 ends unanswered meanwhile: nothing to debit.
            second = asyncio.create_task(settle(ctx, ended("ungated", gated=False)))
            await until(lambda: _done_or_waiting(second, ctx, pid, 2))
            seen = [e for e in await outbox.list_events(ctx) if e.id not in before]
            await blocker.rollback()
        await asyncio.gather(first, second)
        final = sorted((e for e in await outbox.list_events(ctx) if e.id not in before),
                       key=lambda e: e.id)
        assert [e.kind for e in final] == ["call.settled", "call.settled"]
        # What the sender could see then is where it would start: the oldest of them all.
        visible = sorted(e.id for e in seen)
        assert visible == [e.id for e in final][:len(visible)]


async def _at_least(ctx: BillingContext, pid: int, n: int) -> bool:
    return await waiting_behind(ctx, pid) >= n


async def _done_or_waiting(task: asyncio.Task[object], ctx: BillingContext, pid: int,
                           n: int) -> bool:
    return task.done() or await waiting_behind(ctx, pid) >= n
