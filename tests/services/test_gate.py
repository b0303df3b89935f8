"""The gate's rules: who may call, for how long, and what is held meanwhile."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from coobill.config import BillingConfig
from coobill.rating import Tariff, cost, max_duration
from coobill.services import balances, extensions
from coobill.services.audit import audit
from coobill.services.commands import AuthorizeCall, Reason, Verdict
from coobill.services.context import BillingContext
from coobill.services.extensions import ExtensionChanges
from coobill.services.gate import authorize_call
from coobill.services.settings import change_settings
from tests.conftest import FakeClock
from tests.services.conftest import authorize, make_extension, make_rate, rows

TARIFF = Tariff(Decimal("0.1000"), 60, Decimal("0.0500"), 60)


def with_policy(ctx: BillingContext, **policy: object) -> BillingContext:
    """The same ledger, configured with other [billing] settings."""
    billing = BillingConfig(**{**ctx.config.billing.model_dump(), **policy})
    return replace(ctx, config=ctx.config.model_copy(update={"billing": billing}))


async def holds(ctx: BillingContext) -> list[tuple[str, int, bool]]:
    return await rows(ctx, "SELECT uniqueid, amount, billed FROM reservation ORDER BY id")


def assert_unlimited(verdict: Verdict, reason: Reason) -> None:
    assert (verdict.allowed, verdict.reason, verdict.limit_seconds, verdict.held) == (
        True, reason, None, 0,
    )


class TestUnbilledCalls:
    async def test_with_billing_off_globally_every_call_is_allowed_unlimited(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100")
        await make_extension(ctx, "101")
        await extensions.set_extension(ctx, "101", ExtensionChanges(locked=True))
        await make_rate(ctx, "00")
        await change_settings(ctx, billing="off")
        for uniqueid, ext in (("c1", "100"), ("c2", "101"), ("c3", "404")):
            assert_unlimited(await authorize(ctx, uniqueid, ext), Reason.UNBILLED)

    async def test_an_extension_with_billing_off_is_allowed_unlimited(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100", billing=False)
        await make_rate(ctx, "00")
        assert_unlimited(await authorize(ctx, "c1"), Reason.UNBILLED)

    async def test_an_unbilled_call_holds_nothing_but_is_known_to_be_gated(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100", billing=False)
        await authorize(ctx, "c1")
        assert await holds(ctx) == [("c1", 0, False)]


class TestLockedAndUnknown:
    async def test_a_locked_extension_is_denied(self, ctx: BillingContext) -> None:
        await make_extension(ctx, "100", balance="50")
        await make_rate(ctx, "00")
        await extensions.set_extension(ctx, "100", ExtensionChanges(locked=True))
        assert await authorize(ctx, "c1") == Verdict.deny(Reason.LOCKED)
        assert await holds(ctx) == []

    async def test_a_locked_extension_is_denied_even_with_its_billing_off(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100", billing=False)
        await extensions.set_extension(ctx, "100", ExtensionChanges(locked=True))
        assert (await authorize(ctx, "c1")).reason == Reason.LOCKED

    async def test_an_unknown_extension_calls_free_by_default(self, ctx: BillingContext) -> None:
        await make_rate(ctx, "00")
        assert_unlimited(await authorize(ctx, "c1", "404"), Reason.UNKNOWN_EXTENSION)
        assert await holds(ctx) == [("c1", 0, False)]

    async def test_an_unknown_extension_is_denied_when_so_configured(
        self, ctx: BillingContext
    ) -> None:
        strict = with_policy(ctx, unknown_extension="deny")
        assert await authorize(strict, "c1", "404") == Verdict.deny(Reason.UNKNOWN_EXTENSION)
        assert await holds(ctx) == []


class TestNoRate:
    async def test_a_call_no_rate_covers_is_allowed_free_by_default(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100")  # no money at all
        await make_rate(ctx, "01")
        assert_unlimited(await authorize(ctx, "c1", number="0012345"), Reason.NO_RATE)

    async def test_a_call_no_rate_covers_is_denied_when_so_configured(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100", balance="10")
        strict = with_policy(ctx, no_rate="deny")
        assert await authorize(strict, "c1") == Verdict.deny(Reason.NO_RATE)

    async def test_a_rate_for_other_extensions_does_not_cover_the_call(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100", balance="10")
        await make_extension(ctx, "101", balance="10")
        view = await make_rate(ctx, "00", extensions="101")
        assert (await authorize(ctx, "c1", "100")).reason == Reason.NO_RATE
        assert (await authorize(ctx, "c2", "101")).rate_id == view.id

    async def test_a_disabled_rate_does_not_cover_the_call(self, ctx: BillingContext) -> None:
        await make_extension(ctx, "100", balance="10")
        await make_rate(ctx, "00", enabled=False)
        assert (await authorize(ctx, "c1")).reason == Reason.NO_RATE


class TestWindows:
    async def test_the_rate_whose_window_holds_the_local_time_applies(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        """Both ends of a window are included, and a window may cross midnight."""
        await make_extension(ctx, "100", balance="10")
        day = await make_rate(ctx, "00", start="08:00", end="17:59", remark="day")
        night = await make_rate(ctx, "00", start="18:00", end="07:59", remark="night")
        expected = {"07:59": night, "08:00": day, "17:59": day, "18:00": night,
                    "23:59": night, "00:00": night}
        for local, rate in expected.items():
            clock.set_local(local)
            assert (await authorize(ctx, f"c-{local}")).rate_id == rate.id, local

    async def test_windows_are_read_in_the_pbx_time_zone(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        """14:25 UTC is 22:25 in Shanghai: the night rate."""
        await make_extension(ctx, "100", balance="10")
        await make_rate(ctx, "00", start="08:00", end="17:59", remark="day")
        night = await make_rate(ctx, "00", start="22:00", end="06:00", remark="night")
        clock.set_local("14:25")
        await change_settings(ctx, timezone="Asia/Shanghai")
        assert (await authorize(ctx, "c1")).rate_id == night.id

    async def test_outside_every_window_the_call_has_no_rate(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        await make_extension(ctx, "100", balance="10")
        await make_rate(ctx, "00", start="08:00", end="17:59")
        clock.set_local("20:00")
        assert (await authorize(ctx, "c1")).reason == Reason.NO_RATE


class TestFunds:
    async def test_a_call_is_allowed_the_talk_time_the_funds_buy_and_holds_its_cost(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100", balance="0.5", credit="0.5")
        view = await make_rate(ctx, "00")
        verdict = await authorize(ctx, "c1")
        # 0.1 for the first minute, then 18 minutes at 0.05: 1.0000 buys 1140 s.
        assert verdict == Verdict(
            allowed=True, reason=Reason.OK, limit_seconds=1140, held=Decimal("1.0000"),
            rate_id=view.id, funds=Decimal("1.0000"), token=verdict.token,
        )
        assert verdict.token
        assert verdict.limit_seconds == max_duration(TARIFF, Decimal("1"), 10800)
        assert await holds(ctx) == [("c1", 10000, True)]

    async def test_the_limit_is_capped_by_the_longest_call_allowed(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100", balance="1000")
        await make_rate(ctx, "00")
        verdict = await authorize(with_policy(ctx, max_call_seconds=600), "c1")
        assert verdict.limit_seconds == 600
        assert verdict.held == cost(TARIFF, 600) == Decimal("0.5500")

    async def test_a_free_rate_allows_the_longest_call_and_holds_nothing(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100")
        await make_rate(ctx, "00", initial_cost="0", rate="0")
        verdict = await authorize(ctx, "c1")
        assert (verdict.allowed, verdict.limit_seconds, verdict.held) == (True, 10800, 0)

    async def test_funds_below_the_initial_cost_are_denied(self, ctx: BillingContext) -> None:
        """The initial cost is 0.10: balance and credit count together."""
        await make_rate(ctx, "00")
        cases = [("200", "0.0999", "0", False), ("201", "0", "0.0999", False),
                 ("202", "0.1", "0", True), ("203", "0.05", "0.05", True)]
        for number, balance, credit, allowed in cases:
            await make_extension(ctx, number, balance=balance, credit=credit)
            verdict = await authorize(ctx, f"c{number}", number)
            expected = (True, Reason.OK, 60) if allowed else (False, Reason.NO_FUNDS, None)
            assert (verdict.allowed, verdict.reason, verdict.limit_seconds) == expected, number
        assert [u for u, _, _ in await holds(ctx)] == ["c202", "c203"]

    async def test_without_an_initial_cost_the_funds_must_buy_one_period(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100", balance="0.0499")
        await make_rate(ctx, "00", initial_cost="0", initial_time=0, rate="0.05", period=60)
        assert (await authorize(ctx, "c1")).reason == Reason.NO_FUNDS
        await balances.recharge(ctx, ["100"], "0.0001")
        verdict = await authorize(ctx, "c2")
        assert (verdict.allowed, verdict.limit_seconds, verdict.held) == (
            True, 60, Decimal("0.05"),
        )

    async def test_a_connection_fee_without_money_for_a_period_is_denied(
        self, ctx: BillingContext
    ) -> None:
        """Initial time 0: the fee is payable but not one second of talk."""
        await make_extension(ctx, "100", balance="1.04")
        await make_rate(ctx, "00", initial_cost="1", initial_time=0, rate="0.05", period=60)
        assert (await authorize(ctx, "c1")).reason == Reason.NO_FUNDS

    async def test_a_negative_balance_covered_by_credit_still_calls(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100", credit="2", payment="postpaid")
        await make_rate(ctx, "00")
        await balances.adjust(ctx, "100", "-1")
        verdict = await authorize(ctx, "c1")
        assert (verdict.allowed, verdict.funds) == (True, Decimal("1"))

    async def test_what_other_live_calls_hold_is_not_available_to_a_new_one(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100", balance="1.0")
        await make_rate(ctx, "00")
        first = await authorize(ctx, "c1")
        assert first.held == Decimal("1.0")
        second = await authorize(ctx, "c2")
        assert (second.allowed, second.reason, second.funds) == (False, Reason.NO_FUNDS, 0)

    async def test_a_channel_asking_again_keeps_its_earlier_hold(
        self, ctx: BillingContext
    ) -> None:
        """Its earlier Dial may not be settled yet: that hold stays until its evidence
        settles it, and the new authorization has only what is left."""
        await make_extension(ctx, "100", balance="1.0")
        await make_rate(ctx, "00")
        first = await authorize(ctx, "c1")
        again = await authorize(ctx, "c1")
        assert first.allowed
        assert first.held == Decimal("1")
        assert (again.allowed, again.reason) == (False, Reason.NO_FUNDS)
        assert await holds(ctx) == [("c1", 10000, True)]

    async def test_asking_again_lowers_an_earlier_hold_to_what_its_dial_can_have_cost(
        self, ctx: BillingContext
    ) -> None:
        """The daemon says the earlier authorization's Dial can have talked at most 90 s:
        that hold keeps cost(90 s) and the channel's second call gets the rest."""
        await make_extension(ctx, "100", balance="1.0")
        await make_rate(ctx, "00")
        first = await authorize(ctx, "c1")
        assert first.token is not None
        again = await authorize_call(ctx, AuthorizeCall(
            "c1", "100", "0012345678", channel="PJSIP/x", earlier=((first.token, 90),)))
        assert again.allowed
        assert again.held == Decimal("0.85")
        assert sorted(await holds(ctx)) == [("c1", 1500, True), ("c1", 8500, True)]
        assert (await audit(ctx)).ok

    async def test_an_earlier_hold_of_another_channel_is_never_lowered(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100", balance="2.0")
        await make_rate(ctx, "00")
        other = await authorize(ctx, "c1")
        assert other.token is not None
        denied = await authorize_call(ctx, AuthorizeCall(
            "c2", "100", "0012345678", channel="PJSIP/x", earlier=((other.token, 0),)))
        assert (denied.allowed, denied.reason) == (False, Reason.NO_FUNDS)
        assert await holds(ctx) == [("c1", 20000, True)]

    async def test_the_hold_records_the_tariff_the_call_was_allowed_at(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100", balance="10")
        view = await make_rate(ctx, "00", remark="intl")
        await authorize(ctx, "c1")
        [(tariff, label, limit)] = await rows(
            ctx, "SELECT tariff, rate_label, limit_seconds FROM reservation"
        )
        assert tariff == "0.1000/60/0.0500/60"
        assert label == f"#{view.id} 00 intl"
        assert limit == max_duration(TARIFF, Decimal("10"), 10800)

