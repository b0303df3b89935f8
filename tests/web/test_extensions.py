"""Extensions through the API and the pages: list, edit, batch edit, recharge."""

from __future__ import annotations

import httpx

from coobill.services.context import BillingContext
from tests.web.billing_data import add_extension


async def three(ctx: BillingContext) -> None:
    await add_extension(ctx, "100", "Alice")
    await add_extension(ctx, "101", "Bob", locked=True)
    await add_extension(ctx, "200", "Carol", payment="postpaid")


class TestList:
    async def test_filters_by_number_or_name_status_and_payment(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await three(ctx)

        async def numbers(query: str) -> list[str]:
            page = (await billing.get(f"/api/extensions?{query}")).json()
            return [e["extension"] for e in page["items"]]

        assert await numbers("") == ["100", "101", "200"]
        assert await numbers("extension=car") == ["200"]
        assert await numbers("status=locked") == ["101"]
        assert await numbers("status=unlocked&payment=prepaid") == ["100"]
        assert await numbers("limit=2&offset=2") == ["200"]

    async def test_a_bad_filter_is_a_400_naming_it(self, billing: httpx.AsyncClient) -> None:
        response = await billing.get("/api/extensions?payment=cash")
        assert response.status_code == 400
        assert response.json()["field"] == "payment"
        assert (await billing.get("/extensions?status=maybe")).status_code == 400

    async def test_the_page_shows_the_manuals_columns_in_the_currency(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await three(ctx)
        await billing.post(
            "/api/extensions/recharge", json={"extensions": ["100"], "amount": "12.5"}
        )
        page = (await billing.get("/extensions?status=unlocked")).text
        for column in ("Total recharged", "Balance", "Credit limit", "Payment method", "Status"):
            assert column in page
        assert "US$12.5000" in page
        assert "Alice" in page
        assert "Bob" not in page


class TestEdit:
    async def test_creating_then_editing_an_extension(self, billing: httpx.AsyncClient) -> None:
        made = await billing.post("/api/extensions/300", json={"name": "Dan", "billing": True})
        assert made.status_code == 200
        assert made.json()["billing"] is True
        edited = await billing.post(
            "/api/extensions/300", json={"credit_limit": "20", "locked": True}
        )
        body = edited.json()
        assert body["credit_limit"] == "20.0000"
        assert body["locked"]
        assert body["name"] == "Dan"
        assert body["funds_available"] == "20.0000"
        assert (await billing.get("/api/extensions/300")).json() == body

    async def test_changing_the_payment_method_resets_the_total_recharged(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await three(ctx)
        await billing.post("/api/extensions/recharge", json={"extensions": ["100"], "amount": "10"})
        changed = (await billing.post("/api/extensions/100", json={"payment": "postpaid"})).json()
        assert changed["total_recharged"] == "0.0000"
        assert changed["balance"] == "10.0000"

    async def test_a_bad_credit_limit_is_refused_beside_its_field_with_the_values_kept(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await three(ctx)
        api = await billing.post("/api/extensions/100", json={"credit_limit": "-5"})
        assert api.status_code == 400
        assert api.json()["field"] == "credit_limit"
        page = await billing.post(
            "/extensions/100/edit",
            data={
                "name": "Alicia",
                "credit_limit": "lots",
                "payment": "prepaid",
                "locked": "unlocked",
            },
        )
        assert page.status_code == 400
        assert 'id="e-credit_limit"' in page.text
        assert 'value="Alicia"' in page.text
        assert (await billing.get("/api/extensions/100")).json()["name"] == "Alice"

    async def test_in_chinese_the_refusal_beside_the_field_is_in_chinese(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await three(ctx)
        await billing.post("/api/me/language", json={"language": "zh"})
        page = await billing.post(
            "/extensions/100/edit",
            data={"name": "Alicia", "credit_limit": "lots", "payment": "prepaid",
                  "locked": "unlocked"},
        )
        assert page.status_code == 400
        assert "&#39;lots&#39; 不是数字" in page.text
        assert "is not a number" not in page.text
        api = await billing.post("/api/extensions/100", json={"credit_limit": "lots"})
        assert "is not a number" in api.json()["message"]  # the API speaks one language

    async def test_the_edit_form_saves(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await three(ctx)
        assert (await billing.get("/extensions/100/edit")).status_code == 200
        done = await billing.post(
            "/extensions/100/edit",
            data={
                "name": "Alicia",
                "billing": "on",
                "credit_limit": "3",
                "payment": "postpaid",
                "locked": "locked",
            },
        )
        assert done.status_code == 303
        view = (await billing.get("/api/extensions/100")).json()
        assert (view["name"], view["credit_limit"], view["payment"], view["locked"]) == (
            "Alicia",
            "3.0000",
            "postpaid",
            True,
        )

    async def test_the_add_form_refuses_an_existing_number(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await three(ctx)
        again = await billing.post(
            "/extensions/new", data={"extension": "100", "credit_limit": "0"}
        )
        assert again.status_code == 400
        assert "already exists" in again.text
        bad = await billing.post("/extensions/new", data={"extension": "1 0", "credit_limit": "0"})
        assert bad.status_code == 400
        assert 'id="e-extension"' in bad.text
        new = await billing.post(
            "/extensions/new",
            data={"extension": "400", "name": "Eve", "credit_limit": "0", "payment": "prepaid"},
        )
        assert new.status_code == 303
        assert (await billing.get("/api/extensions/400")).json()["name"] == "Eve"

    async def test_an_unknown_extension_is_a_404(self, billing: httpx.AsyncClient) -> None:
        assert (await billing.get("/api/extensions/999")).status_code == 404
        assert (await billing.get("/extensions/999/edit")).status_code == 404


class TestBatchEdit:
    async def test_only_the_given_fields_change(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await three(ctx)
        done = await billing.post(
            "/api/extensions/batch-edit",
            json={"extensions": ["100", "101"], "billing": False, "credit_limit": "7"},
        )
        assert [(e["billing"], e["credit_limit"], e["locked"]) for e in done.json()] == [
            (False, "7.0000", False),
            (False, "7.0000", True),
        ]

    async def test_the_form_applies_only_ticked_boxes(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await three(ctx)
        form = await billing.get("/extensions/batch-edit?ext=100&ext=200")
        assert form.status_code == 200
        assert "200" in form.text
        done = await billing.post(
            "/extensions/batch-edit",
            data={
                "ext": ["100", "200"],
                "apply_locked": "on",
                "locked": "locked",
                "credit_limit": "99",
                "payment": "prepaid",
            },
        )
        assert done.status_code == 303
        assert "n=2" in done.headers["location"]
        views = (await billing.get("/api/extensions?extension=")).json()["items"]
        changed = {v["extension"]: (v["locked"], v["credit_limit"], v["payment"]) for v in views}
        assert changed["100"] == (True, "0.0000", "prepaid")
        assert changed["200"] == (True, "0.0000", "postpaid")

    async def test_an_unknown_extension_changes_none(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await three(ctx)
        refused = await billing.post(
            "/api/extensions/batch-edit", json={"extensions": ["100", "999"], "locked": True}
        )
        assert refused.status_code == 404
        assert (await billing.get("/api/extensions/100")).json()["locked"] is False


class TestRecharge:
    async def test_a_batch_recharges_each_by_the_same_amount(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await three(ctx)
        await billing.post("/api/extensions/recharge", json={"extensions": ["100"], "amount": "1"})
        done = await billing.post(
            "/api/extensions/recharge", json={"extensions": ["100", "200"], "amount": "2.5"}
        )
        assert done.json() == [
            {
                "extension": "100",
                "balance_before": "1.0000",
                "amount": "2.5000",
                "balance_after": "3.5000",
            },
            {
                "extension": "200",
                "balance_before": "0.0000",
                "amount": "2.5000",
                "balance_after": "2.5000",
            },
        ]

    async def test_a_float_or_a_bad_amount_is_refused(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await three(ctx)
        for amount in ("0", "1.23456", "ten", 2.5):
            response = await billing.post(
                "/api/extensions/recharge", json={"extensions": ["100"], "amount": amount}
            )
            assert response.status_code == 400, amount
            assert response.json()["field"] == "amount"

    async def test_the_form_shows_the_error_beside_the_amount_and_keeps_the_choice(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await three(ctx)
        single = await billing.get("/extensions/recharge?ext=100")
        assert "Alice" in single.text
        assert "US$0.0000" in single.text
        page = await billing.post(
            "/extensions/recharge", data={"ext": ["100", "101"], "amount": "-3"}
        )
        assert page.status_code == 400
        assert 'id="e-amount"' in page.text
        assert 'value="-3"' in page.text
        assert 'name="ext" value="101"' in page.text
        done = await billing.post(
            "/extensions/recharge", data={"ext": ["100", "101"], "amount": "3"}
        )
        assert done.status_code == 303
        assert "Recharged 2 extension(s)" in (await billing.get(done.headers["location"])).text

    async def test_nothing_ticked_goes_back_to_the_list(self, billing: httpx.AsyncClient) -> None:
        response = await billing.get("/extensions/recharge")
        assert response.status_code == 303
        assert "notice=choose" in response.headers["location"]
