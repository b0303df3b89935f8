"""Adversarial review of the recurring fees (issue 18): a fee charged twice or never."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from coobill.services import extensions, fees
from coobill.services.audit import audit
from coobill.services.context import BillingContext
from tests.conftest import ON_POSTGRESQL_ONLY, FakeClock
from tests.services.conftest import make_extension


def at(clock: FakeClock, day: str) -> None:
    clock.now = datetime.fromisoformat(day).replace(hour=9, tzinfo=UTC)


class TestANewFeeIsNotAnOldOne:
    async def test_a_fee_added_after_the_last_one_was_removed_is_charged(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        """SQLite gives a new row the highest id + 1: with the only fee removed, the next one
        would get its id, find the old fee's entries under its references, and never be
        charged for the periods the old one was."""
        at(clock, "2027-01-10")
        await make_extension(ctx, "100", balance="100")
        old = await fees.add_fee(ctx, "100", "1", name="Old")
        assert len(await fees.charge_due(ctx)) == 1
        await fees.remove_fee(ctx, old.id)
        new = await fees.add_fee(ctx, "100", "5", name="New")
        charged = await fees.charge_due(ctx)
        assert [(c.fee_id, c.period, c.amount) for c in charged] == [
            (new.id, "2027-01", Decimal("5"))]
        assert (await extensions.show_extension(ctx, "100")).balance == Decimal("94")
        assert (await audit(ctx)).ok


class TestTheChargedPeriodsAreFound:
    async def test_whatever_the_collation_of_the_references(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        """Under PostgreSQL's common collations (en_US, ICU) ';' sorts before ':', and a
        range from `fee:1:2:` to `fee:1:2;` finds nothing: each check then took every fee's
        extension's row lock and looked up each period again, every minute."""
        from sqlalchemy import text

        from coobill.storage import ledger_repo

        if ctx.config.database.url.startswith("postgresql"):
            async with ctx.uow() as uow:
                icu = (await uow.session.execute(text(
                    "SELECT 1 FROM pg_collation WHERE collname = 'en-x-icu'"))).first()
                if icu is not None:
                    await uow.session.execute(text(
                        'ALTER TABLE ledger_entry ALTER COLUMN reference TYPE varchar(64) '
                        'COLLATE "en-x-icu"'))
                    await uow.commit()
            await ctx.uow.engine.dispose()  # the statements prepared before the change
        at(clock, "2026-12-01")
        await make_extension(ctx, "100", balance="100")
        fee = await fees.add_fee(ctx, "100", "1", period="weekly")
        at(clock, "2027-01-10")
        charged = await fees.charge_due(ctx)
        assert len(charged) == 6  # 2026-W49 .. 2026-W53, 2027-W01
        [ext_id] = [r for (r,) in (await _rows(ctx, "SELECT id FROM extension"))]
        wanted = [f"fee:{fee.id}:{ext_id}:{c.period}" for c in charged]
        async with ctx.uow.read() as uow:
            found = await ledger_repo.references_among(uow.session, "fee", [*wanted, "fee:x"])
        assert found == set(wanted)
        assert await fees.charge_due(ctx) == []


async def _rows(ctx: BillingContext, sql: str) -> list[tuple[object, ...]]:
    from sqlalchemy import text

    async with ctx.uow.read() as uow:
        return [tuple(r) for r in (await uow.session.execute(text(sql))).all()]


class TestARemovedFeeIsNotCharged:
    @ON_POSTGRESQL_ONLY  # SQLite has one writer at a time: nothing to interleave
    async def test_removed_while_its_charge_waited_for_the_extension(
        self, ctx: BillingContext, other_ctx: BillingContext, clock: FakeClock
    ) -> None:
        """The check reads the fees, then charges each under its extension's row lock: a fee
        removed in between (the row held by a call meanwhile) was charged all the same."""
        import asyncio

        from sqlalchemy import text

        from tests.attacks.test_outbox_order import until, waiting_behind

        at(clock, "2027-01-10")
        await make_extension(ctx, "100", balance="10")
        fee = await fees.add_fee(ctx, "100", "1")
        async with ctx.uow.engine.connect() as blocker:
            await blocker.execute(text("SELECT id FROM extension WHERE number = '100' FOR UPDATE"))
            pid = int((await blocker.execute(text("SELECT pg_backend_pid()"))).scalar_one())
            check = asyncio.create_task(fees.charge_due(ctx))

            async def waiting() -> bool:
                return await waiting_behind(other_ctx, pid) >= 1

            await until(waiting)
            await fees.remove_fee(other_ctx, fee.id)
            await blocker.rollback()
        assert await check == []
        assert (await extensions.show_extension(ctx, "100")).balance == Decimal("10")
