"""Rates through the API and the pages: every field, errors beside their field, the quote."""

from __future__ import annotations

import httpx

from coobill.services.context import BillingContext
from tests.web.billing_data import add_extension

LONG_DISTANCE = {
    "remark": "Domestic long distance",
    "prefix": "9",
    "length": 12,
    "initial_cost": "0.2",
    "initial_time": 60,
    "rate": "0.1",
    "period": 30,
    "start": "08:00",
    "end": "20:00",
    "extensions": ["100"],
}


async def office(ctx: BillingContext) -> None:
    await add_extension(ctx, "100", "Alice")
    await add_extension(ctx, "101", "Bob")


class TestRatesApi:
    async def test_add_show_edit_disable_delete(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await office(ctx)
        added = await billing.post("/api/rates", json=LONG_DISTANCE)
        assert added.status_code == 201
        rate = added.json()
        assert rate == {
            **LONG_DISTANCE,
            "id": rate["id"],
            "enabled": True,
            "initial_cost": "0.2000",
            "rate": "0.1000",
        }
        edited = await billing.post(
            f"/api/rates/{rate['id']}", json={"rate": "0.15", "extensions": ["100", "101"]}
        )
        assert edited.json()["rate"] == "0.1500"
        assert edited.json()["extensions"] == ["100", "101"]
        assert edited.json()["remark"] == "Domestic long distance"
        disabled = await billing.post(f"/api/rates/{rate['id']}", json={"enabled": False})
        assert disabled.json()["enabled"] is False
        assert [r["id"] for r in (await billing.get("/api/rates")).json()] == [rate["id"]]
        assert (await billing.delete(f"/api/rates/{rate['id']}")).status_code == 204
        assert (await billing.get(f"/api/rates/{rate['id']}")).status_code == 404
        assert (await billing.delete(f"/api/rates/{rate['id']}")).status_code == 404

    async def test_each_bad_field_is_named(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await office(ctx)
        cases = {
            "prefix": {"prefix": "9a"},
            "length": {"length": 0.5},
            "initial_cost": {"initial_cost": "x"},
            "initial_time": {"initial_time": -1},
            "rate": {"rate": "-1"},
            "period": {"period": 0},
            "start": {"start": "25:00"},
            "end": {"end": "noon"},
            "extensions": {"extensions": ["999"]},
        }
        for field, bad in cases.items():
            response = await billing.post("/api/rates", json={**LONG_DISTANCE, **bad})
            assert response.status_code == 400, field
            assert response.json()["field"] == field, (field, response.json())
        short = await billing.post(
            "/api/rates", json={**LONG_DISTANCE, "prefix": "900", "length": 2}
        )
        assert short.json()["field"] == "length"
        assert "counts the prefix" in short.json()["message"]

    async def test_the_quote_says_which_rate_applies_and_what_a_minute_costs(
        self, ctx: BillingContext, clock: object, billing: httpx.AsyncClient
    ) -> None:
        await office(ctx)
        await billing.post("/api/extensions/recharge", json={"extensions": ["100"], "amount": "10"})
        rate = (
            await billing.post(
                "/api/rates", json={**LONG_DISTANCE, "start": "00:00", "end": "23:59"}
            )
        ).json()
        quote = (await billing.get("/api/rates/quote?extension=100&number=912345678901")).json()
        assert quote["rate_id"] == rate["id"]
        assert quote["cost"] == "0.2000"
        assert quote["funds"] == "10.0000"
        assert quote["limit_seconds"] > 60
        other = (await billing.get("/api/rates/quote?extension=101&number=912345678901")).json()
        assert other["rate_id"] is None
        assert other["cost"] is None
        bad = await billing.get("/api/rates/quote?extension=100&number=9x")
        assert bad.status_code == 400
        assert bad.json()["field"] == "number"
        assert (await billing.get("/api/rates/quote?extension=999&number=9")).status_code == 404


class TestRatePages:
    async def test_a_bad_field_is_shown_beside_it_then_fixed(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await office(ctx)
        form = {key: str(value) for key, value in LONG_DISTANCE.items() if key != "extensions"}
        bad = await billing.post(
            "/rates/new",
            data={
                **form,
                "initial_cost": "1.234567",
                "extensions": ["100", "101"],
                "enabled": "on",
            },
        )
        assert bad.status_code == 400
        assert 'id="e-initial_cost"' in bad.text
        assert "more than 4 decimal places" in bad.text
        assert 'value="Domestic long distance"' in bad.text
        assert '<option value="101" selected>' in bad.text
        fixed = await billing.post(
            "/rates/new", data={**form, "extensions": ["100", "101"], "enabled": "on"}
        )
        assert fixed.status_code == 303
        listed = (await billing.get("/rates")).text
        assert "Domestic long distance" in listed
        assert "US$0.2000" in listed

    async def test_the_form_lists_the_number_length_help(self, billing: httpx.AsyncClient) -> None:
        page = (await billing.get("/rates/new")).text
        assert "the prefix included; 0 means any length" in page

    async def test_edit_toggle_and_delete_from_the_list(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await office(ctx)
        rate_id = (await billing.post("/api/rates", json=LONG_DISTANCE)).json()["id"]
        edit_page = await billing.get(f"/rates/{rate_id}/edit")
        assert 'value="0.2000"' in edit_page.text
        form = {key: str(value) for key, value in LONG_DISTANCE.items() if key != "extensions"}
        saved = await billing.post(
            f"/rates/{rate_id}/edit", data={**form, "remark": "Mobile", "extensions": "*"}
        )
        assert saved.status_code == 303
        rate = (await billing.get(f"/api/rates/{rate_id}")).json()
        assert (
            rate["remark"] == "Mobile"
        )
        assert (
            rate["enabled"] is False
        )
        assert (
            rate["extensions"] == ["*"]
        )
        await billing.post(f"/rates/{rate_id}/toggle")
        assert (await billing.get(f"/api/rates/{rate_id}")).json()["enabled"] is True
        await billing.post(f"/rates/{rate_id}/delete")
        assert (await billing.get("/api/rates")).json() == []

    async def test_the_quote_box(self, ctx: BillingContext, billing: httpx.AsyncClient) -> None:
        await office(ctx)
        await billing.post("/api/rates", json={**LONG_DISTANCE, "start": "00:00", "end": "23:59"})
        page = (await billing.get("/rates?quote_extension=100&quote_number=912345678901")).text
        assert "A one-minute call costs US$0.2000" in page
        unknown = (await billing.get("/rates?quote_extension=999&quote_number=9")).text
        assert "extension 999" in unknown
