"""Spend caps: the gate grants what the funds and the caps allow together, refuses with the cap
that left nothing, counts live calls against a cap as it counts them against the funds, and
never lets calls placed at once pass a cap together - on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from types import SimpleNamespace

import pytest

from coobill.errors import BadRequest
from coobill.rating import Tariff
from coobill.services import extensions, rates
from coobill.services.caps import Caps, capped_allowance
from coobill.services.commands import Reason
from coobill.services.context import BillingContext
from coobill.services.settings import change_settings
from tests.conftest import FakeClock
from tests.services.conftest import START, authorize, ended, make_extension, make_rate, settle
from tests.services.test_concurrency import capped, connections_in_use, held_total

# The default test rate: 0.10 for the first 60 s, then 0.05 per started 60 s.


async def set_caps(ctx: BillingContext, number: str = "100", **caps: str) -> None:
    await extensions.set_extension(ctx, number, extensions.ExtensionChanges(**caps))


class TestTheLimitFoldsTheCapsIn:
    async def test_a_daily_cap_below_the_funds_sets_the_limit_and_the_hold(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, balance="10")
        await make_rate(ctx)
        await set_caps(ctx, cap_daily="0.4")
        verdict = await authorize(ctx, "c1")
        # 0.40 buys 60 s + 6 periods: 420 s, holding exactly the cap.
        assert verdict.allowed
        assert verdict.reason == Reason.OK
        assert verdict.limit_seconds == 420
        assert verdict.held == Decimal("0.4")
        assert verdict.funds == Decimal("10")  # the verdict still shows the funds

    async def test_the_live_call_uses_the_cap_so_the_next_one_is_refused_cap_daily(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, balance="10")
        await make_rate(ctx)
        await set_caps(ctx, cap_daily="0.4")
        assert (await authorize(ctx, "c1")).allowed
        refused = await authorize(ctx, "c2")
        assert not refused.allowed
        assert refused.reason == Reason.CAP_DAILY

    async def test_what_calls_were_debited_today_counts_and_tomorrow_starts_afresh(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        await make_extension(ctx, balance="10")
        await make_rate(ctx)
        await set_caps(ctx, cap_daily="0.4")
        assert (await authorize(ctx, "c1")).allowed
        settled = await settle(ctx, ended("c1", billsec=200))  # 0.10 + 3 x 0.05
        assert settled is not None
        assert settled.cost == Decimal("0.25")
        # 0.15 left today: 60 s + 1 period.
        second = await authorize(ctx, "c2")
        assert second.limit_seconds == 120
        assert second.held == Decimal("0.15")
        assert (await authorize(ctx, "c3")).reason == Reason.CAP_DAILY
        await settle(ctx, ended("c2", billsec=0))  # unanswered: its hold goes back
        clock.advance(24 * 3600)
        # A new day: only the month's debits remain, and this cap is the day's.
        assert (await authorize(ctx, "c4")).limit_seconds == 420

    async def test_a_monthly_cap_counts_the_months_debits_across_days(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        await make_extension(ctx, balance="10")
        await make_rate(ctx)
        await set_caps(ctx, cap_monthly="0.35")
        assert (await authorize(ctx, "c1")).limit_seconds == 360
        await settle(ctx, ended("c1", billsec=200))  # 0.25
        clock.advance(3 * 24 * 3600)  # the 25th: the same month
        assert (await authorize(ctx, "c2")).held == Decimal("0.10")
        assert (await authorize(ctx, "c3")).reason == Reason.CAP_MONTHLY
        clock.now = clock.now.replace(month=12, day=1)
        await settle(ctx, ended("c2", billsec=0))
        assert (await authorize(ctx, "c4")).held == Decimal("0.35")

    async def test_the_maximum_cost_of_a_call_lowers_its_limit_and_refuses_below_its_start(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, balance="10")
        await make_rate(ctx)
        await set_caps(ctx, max_call_cost="0.2")
        first, second = await authorize(ctx, "c1"), await authorize(ctx, "c2")
        assert first.limit_seconds == second.limit_seconds == 180  # each call, not together
        await set_caps(ctx, max_call_cost="0.05")  # not even the initial 0.10
        refused = await authorize(ctx, "c3")
        assert not refused.allowed
        assert refused.reason == Reason.MAX_PRICE

    async def test_a_rate_dearer_per_minute_than_allowed_is_refused_max_price(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, balance="10")
        await make_rate(ctx, "00")  # 0.10 a minute at first
        await make_rate(ctx, "01", initial_cost="0.02", initial_time=30, rate="0.01", period=6)
        await set_caps(ctx, max_price_minute="0.0999")
        assert (await authorize(ctx, "c1")).reason == Reason.MAX_PRICE
        # 0.04 a minute for the first 30 s, then 0.10: refused at its dearest.
        assert (await authorize(ctx, "c2", number="0112345")).reason == Reason.MAX_PRICE
        await set_caps(ctx, max_price_minute="0.1")
        assert (await authorize(ctx, "c3")).allowed
        assert (await authorize(ctx, "c4", number="0112345")).allowed

    async def test_no_funds_stays_no_funds_when_the_cap_is_not_what_stops_the_call(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, balance="0.05")
        await make_rate(ctx)
        await set_caps(ctx, cap_daily="5")
        assert (await authorize(ctx, "c1")).reason == Reason.NO_FUNDS


class TestTheSitesDefaults:
    async def test_an_extension_without_caps_takes_the_default_and_its_own_wins(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100", balance="10")
        await make_extension(ctx, "101", balance="10")
        await make_rate(ctx)
        await change_settings(ctx, controls={"cap_daily": "0.2"})
        await set_caps(ctx, "101", cap_daily="0.4")
        assert (await authorize(ctx, "c1", "100")).held == Decimal("0.2")
        assert (await authorize(ctx, "c2", "101")).held == Decimal("0.4")
        await set_caps(ctx, "101", cap_daily="none")  # back to the default
        assert (await authorize(ctx, "c3", "101")).reason == Reason.CAP_DAILY
        await change_settings(ctx, controls={"cap_daily": ""})  # no default any more
        assert (await authorize(ctx, "c4", "100")).limit_seconds == 10800

    async def test_a_bad_cap_is_refused_naming_its_field_and_nothing_is_written(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, balance="10")
        for bad in ("-1", "abc", "0.00001"):
            with pytest.raises(BadRequest) as refused:
                await set_caps(ctx, name="changed", cap_daily=bad)
            assert refused.value.field == "cap_daily"
        view = await extensions.show_extension(ctx, "100")
        assert view.cap_daily is None
        assert view.name == ""
        with pytest.raises(BadRequest) as refused:
            await change_settings(ctx, timezone="Europe/Paris", controls={"cap_monthly": "x"})
        assert refused.value.field == "cap_monthly"
        assert (await extensions.show_extension(ctx, "100")).cap_monthly is None


class TestPeriodsAreThePbxs:
    async def test_the_day_is_the_pbxs_day_not_utcs(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        await change_settings(ctx, timezone="Asia/Shanghai")  # UTC+8
        await make_extension(ctx, balance="10")
        await make_rate(ctx)
        await set_caps(ctx, cap_daily="0.4")
        clock.now = clock.now.replace(hour=10)  # 18:00 in Shanghai, the 22nd
        assert (await authorize(ctx, "c1")).allowed
        await settle(ctx, ended("c1", billsec=200, start=START.replace(hour=18)))  # 0.25
        clock.now = clock.now.replace(hour=15, minute=30)  # 23:30 there: still the 22nd
        assert (await authorize(ctx, "c2")).held == Decimal("0.15")
        await settle(ctx, ended("c2", billsec=0, start=START.replace(hour=23, minute=30)))
        clock.now = clock.now.replace(hour=16, minute=30)  # 00:30 on the 23rd there, UTC's 22nd
        assert (await authorize(ctx, "c3")).held == Decimal("0.4")


class TestCallsAtOnceNeverPassACap:
    async def test_fifty_calls_at_once_hold_no_more_than_the_daily_cap(
        self, ctx: BillingContext
    ) -> None:
        """Funds 100, a cap of 1.00 and calls of at most 300 s (0.30 each): three full
        calls and one of 60 s for the 0.10 left; every other call refused cap_daily."""
        await make_extension(ctx, balance="100")
        await make_rate(ctx)
        await set_caps(ctx, cap_daily="1")
        gate = capped(ctx, 300)
        with connections_in_use(ctx) as peak:
            verdicts = await asyncio.gather(*(authorize(gate, f"c{i}") for i in range(50)))
        if ctx.uow.dialect == "postgresql":
            assert peak[0] > 1  # the authorizations really ran side by side
        allowed = [v for v in verdicts if v.allowed]
        assert sorted(v.limit_seconds for v in allowed) == [60, 300, 300, 300]
        assert {v.reason for v in verdicts if not v.allowed} == {Reason.CAP_DAILY}
        assert await held_total(ctx) == Decimal("1.0")

    async def test_two_daemons_calling_at_once_together_stay_within_the_cap(
        self, ctx: BillingContext, other_daemon: BillingContext
    ) -> None:
        await make_extension(ctx, balance="100")
        await make_rate(ctx)
        await set_caps(ctx, cap_daily="2")
        await settle(ctx, ended("before", billsec=200))  # ungated: 0.25 of the day spent
        one, two = capped(ctx, 300), capped(other_daemon, 300)
        verdicts = await asyncio.gather(
            *(authorize(one if i % 2 else two, f"c{i}") for i in range(40)))
        held = sum((v.held for v in verdicts if v.allowed), Decimal(0))
        assert held == await held_total(ctx) == Decimal("1.75")
        assert {v.reason for v in verdicts if not v.allowed} == {Reason.CAP_DAILY}

    async def test_settling_the_calls_keeps_the_day_within_the_cap(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        """Calls that end and new ones that start, at once: the day's debits and the live
        holds together never pass the cap."""
        await make_extension(ctx, balance="100")
        await make_rate(ctx)
        await set_caps(ctx, cap_daily="1.5")
        gate = capped(ctx, 300)
        first = await asyncio.gather(*(authorize(gate, f"a{i}") for i in range(10)))
        opened = [f"a{i}" for i, v in enumerate(first) if v.allowed]
        await asyncio.gather(
            *(settle(ctx, ended(u, billsec=130)) for u in opened),  # 0.20 each
            *(authorize(gate, f"b{i}") for i in range(10)))
        view = await extensions.show_extension(ctx, "100")
        spent_today = Decimal("100") - view.balance
        assert spent_today + view.reserved <= Decimal("1.5")


class TestTheQuoteSaysWhatTheGateWould:
    async def test_a_quote_shows_the_capped_limit(self, ctx: BillingContext) -> None:
        await make_extension(ctx, balance="10")
        await make_rate(ctx)
        await set_caps(ctx, cap_daily="0.4")
        quote = await rates.quote(ctx, "100", "0012345678")
        assert quote.limit_seconds == (await authorize(ctx, "c1")).limit_seconds == 420
        assert (await rates.quote(ctx, "100", "0012345678")).limit_seconds == 0


class TestAPriceCapOnASplitCall:
    def test_a_split_call_the_price_cap_would_cut_within_its_first_minute_is_refused(
        self,
    ) -> None:
        """Charged by the second, night then the dearer day from the next second: the cap
        would leave one second of talk - refused max_price, not allowed for a second."""
        night = Tariff(Decimal("0"), 0, Decimal("0.01"), 1)
        day = Tariff(Decimal("0"), 0, Decimal("0.05"), 1)
        ext = SimpleNamespace(spent_day_of=None, spent_month_of=None, spent_day=Decimal(0),
                              spent_month=Decimal(0), reserved=Decimal(0))
        decided = capped_allowance(night, Decimal("10"), Caps(per_minute=Decimal("0.6")), ext,
                                   START, 3600, ((0, night), (1, day)))
        assert not decided.allowed
        assert decided.reason == Reason.MAX_PRICE
        at_sixty = capped_allowance(night, Decimal("10"), Caps(per_minute=Decimal("0.6")),
                                    ext, START, 3600, ((0, night), (60, day)))
        assert (at_sixty.allowance.limit_seconds, at_sixty.reason) == (60, Reason.OK)
