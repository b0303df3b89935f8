"""Low-balance alerts: one `low_balance` event per crossing below the threshold - by a call's
debit, a fee, an adjustment or a change of the credit limit - and none again until the funds
went back above it (hysteresis); the site's default applies where an extension sets none; the
gate says COOBILL_LOW_BALANCE on an ALLOW below it; the listing shows and filters them. On
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from coobill.services import balances, extension_listing, extensions
from coobill.services.context import BillingContext
from coobill.services.settings import change_settings
from tests.services.conftest import authorize, ended, make_extension, make_rate, settle
from tests.services.test_concurrency import capped
from tests.services.test_outbox import events, with_webhooks


async def low_events(ctx: BillingContext) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    return [(ext, data["data"]) for kind, ext, data in await events(ctx) if kind == "low_balance"]


async def set_threshold(ctx: BillingContext, value: str, number: str = "100") -> None:
    await extensions.set_extension(ctx, number, extensions.ExtensionChanges(low_balance=value))


class TestOneEventPerCrossing:
    async def test_a_debit_below_the_threshold_is_one_event_and_the_next_debits_none(
        self, ctx: BillingContext
    ) -> None:
        with_webhooks(ctx)
        await make_extension(ctx, balance="1")
        await make_rate(ctx)
        await set_threshold(ctx, "0.8")
        await authorize(ctx, "c1")
        await settle(ctx, ended("c1", billsec=200))  # 0.25: 0.75 left, below 0.80
        await authorize(ctx, "c2")
        await settle(ctx, ended("c2", billsec=60))  # 0.10 more: still below, no new event
        [(ext, data)] = await low_events(ctx)
        assert ext == "100"
        assert (data["funds"], data["threshold"]) == ("0.7500", "0.8000")
        view = await extensions.show_extension(ctx, "100")
        assert view.low_balance_since is not None

    async def test_it_rearms_when_the_funds_go_back_above_and_crosses_again(
        self, ctx: BillingContext
    ) -> None:
        with_webhooks(ctx)
        await make_extension(ctx, balance="5")
        await set_threshold(ctx, "3")
        await balances.adjust(ctx, "100", "-2.5")  # 2.50: below
        await balances.recharge(ctx, ["100"], "1")  # 3.50: above, rearmed, no event
        assert (await extensions.show_extension(ctx, "100")).low_balance_since is None
        await balances.adjust(ctx, "100", "-1")  # 2.50 again: a second crossing
        assert [d["funds"] for _, d in await low_events(ctx)] == ["2.5000", "2.5000"]

    async def test_lowering_the_credit_limit_crosses_and_raising_it_rearms(
        self, ctx: BillingContext
    ) -> None:
        with_webhooks(ctx)
        await make_extension(ctx, balance="1", credit="5", payment="postpaid")
        await set_threshold(ctx, "4")
        assert await low_events(ctx) == []  # 6.00: above
        changes = extensions.ExtensionChanges
        await extensions.set_extension(ctx, "100", changes(credit_limit=Decimal(2)))
        assert len(await low_events(ctx)) == 1
        await extensions.edit_extensions(ctx, ["100"], changes(credit_limit=Decimal(10)))
        assert (await extensions.show_extension(ctx, "100")).low_balance_since is None

    async def test_the_sites_default_threshold_applies_where_the_extension_sets_none(
        self, ctx: BillingContext
    ) -> None:
        with_webhooks(ctx)
        await change_settings(ctx, controls={"low_balance": "2"})
        await make_extension(ctx, "100", balance="3")
        await make_extension(ctx, "101", balance="3")
        await set_threshold(ctx, "0.5", "101")
        await balances.adjust(ctx, "100", "-1.5")
        await balances.adjust(ctx, "101", "-1.5")
        assert [ext for ext, _ in await low_events(ctx)] == ["100"]

    async def test_changes_at_once_cross_once(self, ctx: BillingContext) -> None:
        with_webhooks(ctx)
        await make_extension(ctx, balance="10")
        await set_threshold(ctx, "5")
        await asyncio.gather(*(balances.adjust(ctx, "100", "-1") for _ in range(8)))
        assert len(await low_events(ctx)) == 1

    async def test_without_webhooks_the_crossing_is_still_recorded(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, balance="5")
        await set_threshold(ctx, "3")
        await balances.adjust(ctx, "100", "-3")
        assert (await extensions.show_extension(ctx, "100")).low_balance_since is not None


class TestWhatTheGateAndTheListingSay:
    async def test_an_allow_below_the_threshold_is_marked_low_balance(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, balance="2")
        await make_rate(ctx)
        gate = capped(ctx, 300)  # each call holds 0.30 at most: its funds at rest stay 2.00
        assert not (await authorize(gate, "c1")).low_balance  # no threshold
        await set_threshold(ctx, "2.5")
        below = await authorize(gate, "c2")
        assert below.allowed
        assert below.low_balance
        await set_threshold(ctx, "2")  # equal is not below
        assert not (await authorize(gate, "c3")).low_balance

    async def test_the_listing_shows_and_filters_those_below(self, ctx: BillingContext) -> None:
        await change_settings(ctx, controls={"low_balance": "4"})
        await make_extension(ctx, "100", balance="3")
        await make_extension(ctx, "101", balance="5")
        await make_extension(ctx, "102", balance="1")
        await set_threshold(ctx, "0.5", "102")
        views, total = await extension_listing.list_extensions(ctx, low=True)
        assert ([v.extension for v in views], total) == (["100"], 1)
        everyone, _ = await extension_listing.list_extensions(ctx)
        assert [v.below_threshold for v in everyone] == [True, False, False]
