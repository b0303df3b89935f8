"""Live calls' holds: reconciled with the PBX after an outage, released or charged by hand."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from coobill.errors import BadRequest, UnknownReservation
from coobill.services import extensions, reservations
from coobill.services.audit import audit
from coobill.services.commands import SettleChannel
from coobill.services.context import BillingContext
from tests.conftest import FakeClock
from tests.services.conftest import authorize, ended, make_extension, make_rate, rows


def local(clock: FakeClock, seconds: float = 0) -> datetime:
    """The clock's time as the ledger records it (the PBX zone is UTC in these tests)."""
    return clock().replace(tzinfo=None) + timedelta(seconds=seconds)


@pytest.fixture
async def three_live_calls(ctx: BillingContext) -> None:
    """Three calls of extension 100, each holding 9.05 for three hours of talk."""
    await make_extension(ctx, "100", balance="30")
    await make_rate(ctx, "00")
    for uniqueid in ("c1", "c2", "c3"):
        await authorize(ctx, uniqueid)


@pytest.mark.usefixtures("three_live_calls")
class TestReconcile:
    async def test_holds_of_channels_gone_are_flagged_and_still_held(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        done = await reservations.reconcile(ctx, {"c2"}, asked_at=local(clock, 10))
        assert (done.settled, sorted(done.flagged)) == ([], ["c1", "c3"])
        assert list(done.live) == ["c2"]
        listed = await reservations.list_held(ctx, state="flagged")
        assert sorted(h.uniqueid for h in listed) == ["c1", "c3"]
        assert all(h.note == "channel gone and its end was missed" for h in listed)
        view = await extensions.show_extension(ctx, "100")
        assert view.reserved == sum(h.amount for h in await reservations.list_held(ctx))

    async def test_reconciling_again_flags_nothing_twice(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        await reservations.reconcile(ctx, set(), asked_at=local(clock, 10))
        done = await reservations.reconcile(ctx, set(), asked_at=local(clock, 20))
        assert sorted(done.flagged) == ["c1", "c2", "c3"]
        assert len(await reservations.list_held(ctx, state="flagged")) == 3

    async def test_holds_newer_than_the_live_list_are_left_alone(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        done = await reservations.reconcile(ctx, set(), asked_at=local(clock))
        assert (done.settled, done.flagged) == ([], [])
        assert {h.state for h in await reservations.list_held(ctx)} == {"held"}

    async def test_a_hold_whose_end_is_in_the_cdr_store_is_settled_from_it(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        async def find_cdr(uniqueids: Collection[str]) -> dict[str, SettleChannel]:
            return {"c1": ended("c1", billsec=61).as_channel()} if "c1" in uniqueids else {}

        done = await reservations.reconcile(
            ctx, set(), asked_at=local(clock, 10), find_cdr=find_cdr
        )
        assert (done.settled, sorted(done.flagged)) == (["c1"], ["c2", "c3"])
        assert (await extensions.show_extension(ctx, "100")).balance == Decimal("29.85")
        assert (await audit(ctx)).ok


@pytest.fixture
async def flagged(ctx: BillingContext, clock: FakeClock, three_live_calls: None) -> None:
    """c1, c2 and c3 flagged: their channels went while AMI was away."""
    await reservations.reconcile(ctx, set(), asked_at=local(clock, 10))


@pytest.mark.usefixtures("flagged")
class TestResolvingByHand:
    async def test_releasing_a_hold_frees_its_funds_without_a_charge(
        self, ctx: BillingContext
    ) -> None:
        await reservations.release(ctx, "c1")
        assert [h.uniqueid for h in await reservations.list_held(ctx)] == ["c2", "c3"]
        assert (await extensions.show_extension(ctx, "100")).balance == Decimal("30")
        assert await rows(ctx, "SELECT count(*) FROM call") == [(0,)]
        assert await rows(ctx, "SELECT state, note FROM reservation WHERE uniqueid = 'c1'") == [
            ("released", "released by billing_user")]
        assert (await audit(ctx)).ok

    async def test_charging_a_hold_settles_the_call_for_that_many_seconds(
        self, ctx: BillingContext
    ) -> None:
        settlement = await reservations.charge(ctx, "c1", 61)
        assert settlement is not None
        assert settlement.cost == Decimal("0.15")
        assert (await extensions.show_extension(ctx, "100")).balance == Decimal("29.85")
        [(evidence, billsec, gated)] = await rows(
            ctx, "SELECT evidence, billable_seconds, gated FROM call WHERE uniqueid = 'c1'"
        )
        assert (evidence, billsec, bool(gated)) == ("manual", 61, True)
        assert [h.uniqueid for h in await reservations.list_held(ctx)] == ["c2", "c3"]
        assert (await audit(ctx)).ok

    async def test_charging_zero_seconds_records_an_unanswered_call(
        self, ctx: BillingContext
    ) -> None:
        settlement = await reservations.charge(ctx, "c1", 0)
        assert settlement is not None
        assert settlement.cost == 0
        assert await rows(ctx, "SELECT disposition FROM call") == [("NO ANSWER",)]

    async def test_releasing_or_charging_an_unknown_hold_is_refused(
        self, ctx: BillingContext
    ) -> None:
        with pytest.raises(UnknownReservation):
            await reservations.release(ctx, "nope")
        with pytest.raises(UnknownReservation):
            await reservations.charge(ctx, "nope", 10)

    async def test_charging_negative_or_absurd_seconds_is_refused(
        self, ctx: BillingContext
    ) -> None:
        for seconds in (-1, 99999999999999999999):
            with pytest.raises(BadRequest) as caught:
                await reservations.charge(ctx, "c1", seconds)
            assert caught.value.field == "seconds"
        assert len(await reservations.list_held(ctx)) == 3

    async def test_a_released_hold_cannot_be_released_or_charged_again(
        self, ctx: BillingContext
    ) -> None:
        await reservations.release(ctx, "c1")
        with pytest.raises(UnknownReservation):
            await reservations.release(ctx, "c1")
        with pytest.raises(UnknownReservation):
            await reservations.charge(ctx, "c1", 61)
        assert (await extensions.show_extension(ctx, "100")).balance == Decimal("30")
        assert (await audit(ctx)).ok


@pytest.mark.usefixtures("three_live_calls")
class TestALiveCallsHold:
    async def test_a_live_calls_hold_cannot_be_released_or_charged_by_hand(
        self, ctx: BillingContext
    ) -> None:
        """Its own evidence settles it: a billing user releasing it would make the call free."""
        with pytest.raises(UnknownReservation) as caught:
            await reservations.release(ctx, "c1")
        assert "no flagged hold" in str(caught.value)
        with pytest.raises(UnknownReservation):
            await reservations.charge(ctx, "c1", 61)
        assert len(await reservations.list_held(ctx, state="held")) == 3
