"""Adversarial review of the recurring fees (issue 18): a fee charged twice or never."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from coobill.services import extensions, fees
from coobill.services.audit import audit
from coobill.services.context import BillingContext
from tests.conftest import FakeClock
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
