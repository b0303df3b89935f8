"""Settings (billing on/off, currency) and live calls with their flagged holds."""

from __future__ import annotations

from datetime import datetime

import httpx

from coobill.services import balances, reservations
from coobill.services.commands import AuthorizeCall
from coobill.services.context import BillingContext
from coobill.services.gate import authorize_call
from tests.web.billing_data import add_extension, add_rate


class TestSettings:
    async def test_billing_off_and_a_known_currency_with_its_symbol(
        self, billing: httpx.AsyncClient
    ) -> None:
        changed = await billing.post("/api/settings", json={"billing": "off", "currency": "CNY"})
        assert changed.json() == {
            "billing": "off",
            "currency": "CNY",
            "currency_symbol": "¥",
            "timezone": "UTC",
            "cap_daily": "", "cap_monthly": "", "max_call_cost": "", "max_price_minute": "",
            "low_balance": "", "min_margin": "",
        }
        assert (await billing.get("/api/settings")).json()["currency_symbol"] == "¥"

    async def test_the_minimum_margin_is_set_shown_and_cleared(
        self, billing: httpx.AsyncClient
    ) -> None:
        assert (await billing.post("/api/settings", json={"min_margin": "0.03"})
                ).json()["min_margin"] == "0.0300"
        refused = await billing.post("/api/settings", json={"min_margin": "-1"})
        assert (refused.status_code, refused.json()["field"]) == (400, "min_margin")
        form = await billing.get("/settings")
        assert 'name="min_margin"' in form.text
        assert 'value="0.0300"' in form.text
        # the form always sends the box: emptied, the configuration's minimum applies again
        saved = await billing.post("/settings", data={"billing": "on", "currency": "USD",
                                                      "timezone": "UTC", "min_margin": ""})
        assert saved.status_code == 303
        assert (await billing.get("/api/settings")).json()["min_margin"] == ""

    async def test_a_bad_minimum_margin_is_shown_beside_its_field_in_chinese(
        self, billing: httpx.AsyncClient
    ) -> None:
        await billing.post("/api/me/language", json={"language": "zh"})
        page = await billing.post("/settings", data={"billing": "on", "currency": "USD",
                                                     "timezone": "UTC", "min_margin": "abc"})
        assert page.status_code == 400
        assert "最低利润" in page.text
        assert "不是数字" in page.text

    async def test_another_currency_needs_its_symbol(self, billing: httpx.AsyncClient) -> None:
        refused = await billing.post("/api/settings", json={"currency": "OTHER"})
        assert refused.status_code == 400
        assert refused.json()["field"] == "symbol"
        done = await billing.post("/api/settings", json={"currency": "OTHER", "symbol": "₩"})
        assert done.json()["currency_symbol"] == "₩"

    async def test_the_form_saves_and_amounts_follow_the_currency(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await add_extension(ctx, "100", "Alice")
        form = await billing.get("/settings")
        assert 'value="USD" selected' in form.text
        saved = await billing.post(
            "/settings", data={"currency": "CNY", "symbol": "US$", "timezone": "UTC"}
        )
        assert saved.status_code == 303
        assert (await billing.get("/api/settings")).json()["billing"] == "off"
        assert "¥0.0000" in (await billing.get("/extensions")).text

    async def test_a_bad_time_zone_is_shown_beside_its_field(
        self, billing: httpx.AsyncClient
    ) -> None:
        page = await billing.post(
            "/settings", data={"billing": "on", "currency": "USD", "timezone": "Mars/Base"}
        )
        assert (
            page.status_code == 400
        )
        assert (
            'id="e-timezone"' in page.text
        )
        assert (
            'value="Mars/Base"' in page.text
        )


async def two_holds(ctx: BillingContext) -> None:
    """100's call live-1 is in progress; 101's live-2 ended unseen, so recovery flagged it."""
    await add_extension(ctx, "100", "Alice")
    await add_extension(ctx, "101", "Bob")
    await balances.recharge(ctx, ["100", "101"], "30")
    await add_rate(ctx, rate="0.6")
    await authorize_call(ctx, AuthorizeCall("live-1", "100", "9123"))
    await authorize_call(ctx, AuthorizeCall("live-2", "101", "9124"))
    await reservations.reconcile(ctx, ["live-1"], asked_at=datetime(2026, 11, 22, 15, 0))


class TestLiveCalls:
    async def test_lists_holds_with_the_flagged_one_marked(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await two_holds(ctx)
        held = {h["uniqueid"]: h for h in (await billing.get("/api/live")).json()}
        assert held["live-1"]["state"] == "held"
        assert held["live-2"]["state"] == "flagged"
        assert held["live-1"]["number"] == "9123"
        assert held["live-1"]["limit_seconds"] > 0
        page = (await billing.get("/live")).text
        assert (
            "Flagged" in page
        )
        assert (
            "/live/live-2/release" in page
        )
        assert (
            "/live/live-1/release" not in page
        )

    async def test_releasing_a_flagged_hold_charges_nothing(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await two_holds(ctx)
        assert (await billing.post("/api/live/live-2/release")).status_code == 204
        assert [h["uniqueid"] for h in (await billing.get("/api/live")).json()] == ["live-1"]
        assert (await billing.get("/api/extensions/101")).json()["funds_available"] == "30.0000"
        assert (await billing.post("/api/live/live-2/release")).status_code == 404

    async def test_charging_a_flagged_hold_debits_those_seconds(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await two_holds(ctx)
        charged = await billing.post("/api/live/live-2/charge", json={"seconds": 120})
        assert charged.json() == {"uniqueid": "live-2", "cost": "1.2000"}
        assert (await billing.get("/api/extensions/101")).json()["balance"] == "28.8000"
        assert (await billing.get("/api/calls?keyword=9124")).json()["total"] == 1

    async def test_a_call_in_progress_cannot_be_resolved(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await two_holds(ctx)
        assert (await billing.post("/api/live/live-1/release")).status_code == 404
        assert (
            await billing.post("/api/live/live-1/charge", json={"seconds": 5})
        ).status_code == 404
        assert (await billing.post("/live/live-1/release")).status_code == 404

    async def test_the_page_forms_resolve_and_refuse_bad_seconds(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await two_holds(ctx)
        bad = await billing.post("/live/live-2/charge", data={"seconds": "ten"})
        assert bad.status_code == 400
        assert "whole number of seconds" in bad.text
        assert (
            await billing.post("/api/live/live-2/charge", json={"seconds": -1})
        ).status_code == 400
        done = await billing.post("/live/live-2/charge", data={"seconds": "60"})
        assert done.status_code == 303
        assert "notice=charged" in done.headers["location"]
