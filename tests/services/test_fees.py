"""Recurring fees: each period charged once per extension - across restarts and a second
daemon, missed periods caught up once, never again on a recharge - as ledger entries of their
own kind, shown among the recharge records; a fee past the credit locks or flags. On SQLite
and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from coobill.daemon import Daemon
from coobill.daemon.fees import TRUST_AFTER_SECONDS, FeeCharger
from coobill.errors import BadRequest, UnknownExtension
from coobill.services import balances, extensions, fees, outbox, reports
from coobill.services.audit import audit
from coobill.services.context import BillingContext
from coobill.services.settings import change_settings
from tests.conftest import FakeClock, settings_for
from tests.services.conftest import make_extension, rows


def at(clock: FakeClock, day: str) -> None:
    clock.now = datetime.fromisoformat(day).replace(hour=9, tzinfo=UTC)


async def fee_entries(ctx: BillingContext) -> list[tuple[str, str, Decimal]]:
    found = await rows(ctx, "SELECT e.number, l.reference, l.amount FROM ledger_entry l JOIN "
                            "extension e ON e.id = l.extension_id WHERE l.kind = 'fee' "
                            "ORDER BY l.id")
    return [(n, r.rsplit(":", 1)[1], Decimal(a) / 10000) for n, r, a in found]


class TestPeriods:
    def test_months_and_iso_weeks_from_the_first_day_through_today(self) -> None:
        assert fees.periods_through("monthly", date(2026, 11, 15), date(2027, 2, 1)) == [
            "2026-11", "2026-12", "2027-01", "2027-02"]
        assert fees.periods_through("weekly", date(2027, 1, 6), date(2027, 1, 18)) == [
            "2027-W01", "2027-W02", "2027-W03"]
        assert fees.periods_through("monthly", date(2027, 3, 1), date(2027, 2, 28)) == []


class TestChargingOncePerPeriod:
    async def test_a_restart_spanning_two_periods_charges_each_missed_one_once(
        self, ctx: BillingContext, other_ctx: BillingContext, clock: FakeClock
    ) -> None:
        """The first daemon charges January; it is down through February and into March;
        the one that starts then (another engine and ledger thread: a restart) charges
        February and March, once each, however often either checks."""
        at(clock, "2027-01-10")
        await make_extension(ctx, "100", balance="100")
        await make_extension(ctx, "101", balance="100")
        await fees.add_fee(ctx, "*", "10", name="Line rental")
        assert [(c.extension, c.period) for c in await fees.charge_due(ctx)] == [
            ("100", "2027-01"), ("101", "2027-01")]
        assert await fees.charge_due(ctx) == []
        at(clock, "2027-03-02")
        restarted = await fees.charge_due(other_ctx)
        assert sorted((c.extension, c.period) for c in restarted) == [
            ("100", "2027-02"), ("100", "2027-03"), ("101", "2027-02"), ("101", "2027-03")]
        assert await fees.charge_due(other_ctx) == []
        assert await fees.charge_due(ctx) == []
        assert [p for n, p, _ in await fee_entries(ctx) if n == "100"] == [
            "2027-01", "2027-02", "2027-03"]
        assert (await extensions.show_extension(ctx, "100")).balance == Decimal("70")
        assert (await audit(ctx)).ok

    async def test_two_daemons_checking_at_once_charge_each_period_once(
        self, ctx: BillingContext, other_ctx: BillingContext, clock: FakeClock
    ) -> None:
        import asyncio

        at(clock, "2026-12-20")
        await make_extension(ctx, "100", balance="100")
        await fees.add_fee(ctx, "100", "3", period="weekly", starts="2026-12-28")
        at(clock, "2027-01-10")
        await asyncio.gather(fees.charge_due(ctx), fees.charge_due(other_ctx))
        assert [p for _, p, _ in await fee_entries(ctx)] == ["2026-W53", "2027-W01"]
        assert (await extensions.show_extension(ctx, "100")).balance == Decimal("94")

    async def test_a_recharge_charges_nothing_again(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        at(clock, "2027-01-10")
        await make_extension(ctx, "100")
        await fees.add_fee(ctx, "100", "5", over_credit="flag")
        await fees.charge_due(ctx)
        await balances.recharge(ctx, ["100"], "20")
        assert await fees.charge_due(ctx) == []
        assert (await extensions.show_extension(ctx, "100")).balance == Decimal("15")

    async def test_only_billed_extensions_and_not_before_they_existed(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        at(clock, "2027-01-10")
        await fees.add_fee(ctx, "*", "1", starts="2026-11-01")
        await make_extension(ctx, "100", balance="10")
        await make_extension(ctx, "102", billing=False)
        charged = await fees.charge_due(ctx)
        assert [(c.extension, c.period) for c in charged] == [("100", "2027-01")]


class TestWhatAFeeIs:
    async def test_it_is_a_fee_entry_and_a_negative_record_among_the_recharges(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        ctx.config = settings_for(str(ctx.config.database.url), webhooks={
            "urls": ["http://127.0.0.1:9/"], "secret": "s" * 16})
        at(clock, "2027-01-10")
        await make_extension(ctx, "100", balance="10")
        await fees.add_fee(ctx, "100", "2.5", name="Voicemail")
        await fees.charge_due(ctx)
        records, _ = await reports.list_recharges(ctx)
        fee = records[0]
        assert (fee.amount, fee.balance_before, fee.balance_after, fee.who, fee.kind) == (
            Decimal("-2.5"), Decimal("10"), Decimal("7.5"), "fee: Voicemail", "fee")
        assert (await extensions.show_extension(ctx, "100")).total_recharged == Decimal("10")
        [event] = [e for e in await outbox.list_events(ctx) if e.kind == "fee"]
        data = json.loads(event.payload)["data"]
        assert (data["period"], data["amount"], data["over_credit"]) == ("2027-01", "2.5000", False)
        assert (await audit(ctx)).ok

    async def test_past_the_credit_it_is_charged_and_the_extension_locked(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        ctx.config = settings_for(str(ctx.config.database.url), webhooks={
            "urls": ["http://127.0.0.1:9/"], "secret": "s" * 16})
        at(clock, "2027-01-10")
        await make_extension(ctx, "100", balance="1")
        await fees.add_fee(ctx, "100", "5")
        [charged] = await fees.charge_due(ctx)
        assert charged.over_credit
        assert charged.balance_after == Decimal("-4")
        assert (await extensions.show_extension(ctx, "100")).locked
        kinds = [e.kind for e in reversed(await outbox.list_events(ctx))]
        assert kinds[-2:] == ["fee", "extension.locked"]

    async def test_past_the_credit_with_flag_it_is_charged_and_left_unlocked(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        at(clock, "2027-01-10")
        await make_extension(ctx, "100", balance="1", credit="2")
        await fees.add_fee(ctx, "100", "5", over_credit="flag")
        [charged] = await fees.charge_due(ctx)
        assert charged.over_credit
        assert charged.balance_after == Decimal("-4")
        assert not (await extensions.show_extension(ctx, "100")).locked


class TestAddingAndRemoving:
    async def test_each_bad_field_is_refused_with_its_name(self, ctx: BillingContext) -> None:
        await make_extension(ctx, "100")
        for kwargs, field in [({"amount": "0"}, "amount"), ({"amount": "1.23456"}, "amount"),
                              ({"period": "daily"}, "period"),
                              ({"over_credit": "ignore"}, "over_credit"),
                              ({"starts": "2027-13-01"}, "starts"), ({"name": "x" * 65}, "name"),
                              ({"starts": "2025-01-01"}, "starts")]:
            with pytest.raises(BadRequest) as refused:
                await fees.add_fee(ctx, "100", **{"amount": "1", **kwargs})  # type: ignore[arg-type]
            assert refused.value.field == field
        with pytest.raises(UnknownExtension):
            await fees.add_fee(ctx, "999", "1")
        assert await fees.list_fees(ctx) == []

    async def test_a_removed_fee_charges_no_more_and_its_charges_stay(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        at(clock, "2027-01-10")
        await make_extension(ctx, "100", balance="10")
        fee = await fees.add_fee(ctx, "100", "1")
        await fees.charge_due(ctx)
        assert (await fees.remove_fee(ctx, fee.id)).id == fee.id
        at(clock, "2027-02-10")
        assert await fees.charge_due(ctx) == []
        assert len(await fee_entries(ctx)) == 1
        with pytest.raises(BadRequest, match="no such fee"):
            await fees.remove_fee(ctx, fee.id)


class TestTheDaemonChargesThem:
    async def test_a_daemon_restarted_two_months_later_charges_the_missed_months_once(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        at(clock, "2027-01-10")
        await make_extension(ctx, "100", balance="100")
        await fees.add_fee(ctx, "100", "10")
        settings = settings_for(str(ctx.config.database.url), agi={"enabled": False},
                                ami={"enabled": False}, web={"enabled": False})
        for day in ("2027-01-10", "2027-03-05", "2027-03-06"):
            at(clock, day)
            if day == "2027-03-06":  # a recharge before the last start moves no fee
                await balances.recharge(ctx, ["100"], "50")
            ctx.config = settings
            daemon = Daemon(settings, ctx=ctx)
            await daemon.start()
            await daemon.events.fee_checks.reached(1)
            daemon.ctx = None  # the test's ctx outlives each daemon
            await daemon.stop()
        assert [p for _, p, _ in await fee_entries(ctx)] == ["2027-01", "2027-02", "2027-03"]
        assert (await extensions.show_extension(ctx, "100")).balance == Decimal("120")
        assert (await audit(ctx)).ok


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Monotonic:
    """The elapsed-time clock the charger compares the wall clock with, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestPeriodsBeginInThePbxsTimeZone:
    async def test_west_of_utc_utcs_new_month_is_not_the_pbxs(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        await change_settings(ctx, timezone="America/New_York")  # UTC-5 in winter
        clock.now = utc("2027-01-31T20:00")
        await make_extension(ctx, "100", balance="100")
        await fees.add_fee(ctx, "100", "10")
        assert [c.period for c in await fees.charge_due(ctx)] == ["2027-01"]
        clock.now = utc("2027-02-01T04:30")  # UTC's February; 23:30 on the 31st there
        assert await fees.charge_due(ctx) == []
        clock.now = utc("2027-02-01T05:30")  # 00:30 on the 1st there
        assert [c.period for c in await fees.charge_due(ctx)] == ["2027-02"]

    async def test_east_of_utc_the_pbxs_month_begins_before_utcs(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        await change_settings(ctx, timezone="Asia/Shanghai")  # UTC+8
        clock.now = utc("2027-01-20T09:00")
        await make_extension(ctx, "100", balance="100")
        await fees.add_fee(ctx, "100", "10", period="weekly")
        assert [c.period for c in await fees.charge_due(ctx)] == ["2027-W03"]
        clock.now = utc("2027-01-24T15:30")  # Sunday 23:30 there
        assert await fees.charge_due(ctx) == []
        clock.now = utc("2027-01-24T16:30")  # Monday 00:30 there, still Sunday in UTC
        assert [c.period for c in await fees.charge_due(ctx)] == ["2027-W04"]


class TestTheChargerAndAClockJumpingAhead:
    async def fee_on_the_last_evening(self, ctx: BillingContext, clock: FakeClock) -> None:
        await change_settings(ctx, timezone="America/New_York")
        clock.now = utc("2027-02-01T03:00")  # 22:00 on January 31st there
        await make_extension(ctx, "100", balance="100")
        await fees.add_fee(ctx, "100", "10")

    async def test_a_period_only_the_jump_began_is_not_charged_and_the_real_one_is_once(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        await self.fee_on_the_last_evening(ctx, clock)
        elapsed = Monotonic()
        charger = FeeCharger(ctx, monotonic=elapsed)
        assert [c.period for c in await charger.check()] == ["2027-01"]
        clock.advance(60)
        elapsed.now += 60
        assert await charger.check() == []
        clock.advance(3 * 3600)  # set three hours ahead: 01:01 on February 1st there
        elapsed.now += 60
        assert await charger.check() == []
        clock.advance(-3 * 3600 + 60)  # and set right again: 22:03 on the 31st
        elapsed.now += 60
        assert await charger.check() == []
        clock.advance(2 * 3600)  # the real midnight has passed: 00:03 there
        elapsed.now += 2 * 3600
        assert [c.period for c in await charger.check()] == ["2027-02"]
        clock.advance(60)
        elapsed.now += 60
        assert await charger.check() == []
        assert [p for _, p, _ in await fee_entries(ctx)] == ["2027-01", "2027-02"]

    async def test_a_clock_set_right_ahead_is_believed_once_it_keeps_pace(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        """A clock that was behind and is set right (NTP at boot): its new month is charged
        late, once it has kept pace, not lost."""
        await self.fee_on_the_last_evening(ctx, clock)
        elapsed = Monotonic()
        charger = FeeCharger(ctx, monotonic=elapsed)
        await charger.check()
        clock.advance(4 * 3600)  # 02:00 on February 1st there
        elapsed.now += 60
        assert await charger.check() == []
        clock.advance(TRUST_AFTER_SECONDS / 2)
        elapsed.now += TRUST_AFTER_SECONDS / 2
        assert await charger.check() == []
        clock.advance(TRUST_AFTER_SECONDS / 2)
        elapsed.now += TRUST_AFTER_SECONDS / 2
        assert [c.period for c in await charger.check()] == ["2027-02"]
        assert await charger.check() == []

    async def test_a_restarted_daemon_trusts_its_clock_and_catches_up(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        await self.fee_on_the_last_evening(ctx, clock)
        await FeeCharger(ctx, monotonic=Monotonic()).check()
        clock.advance(40 * 86400)  # down forty days: the first check of the next run
        assert [c.period for c in await FeeCharger(ctx, monotonic=Monotonic()).check()] == [
            "2027-02", "2027-03"]
