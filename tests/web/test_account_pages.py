"""The account controls' pages: webhooks (the outbox's delivery state), fees, statements."""

from __future__ import annotations

import httpx

from coobill.services import balances, fees, outbox
from coobill.services.context import BillingContext
from tests.conftest import settings_for
from tests.web.billing_data import add_extension


def with_webhooks(ctx: BillingContext) -> None:
    ctx.config = settings_for(str(ctx.config.database.url), webhooks={
        "urls": ["https://hooks.example.net/coobill"], "secret": "s" * 32, "max_attempts": 1})


async def one_failed_one_pending(ctx: BillingContext) -> list[outbox.EventView]:
    with_webhooks(ctx)
    await add_extension(ctx, "100", "Alice")
    await balances.recharge(ctx, ["100"], "5")
    await balances.adjust(ctx, "100", "-1")
    first = (await outbox.due(ctx))[0]
    await outbox.attempt_failed(ctx, first, [], "HTTP 503")
    return sorted(await outbox.list_events(ctx), key=lambda e: e.id)


class TestWebhooksPage:
    async def test_lists_events_with_their_state_and_the_configured_urls(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await one_failed_one_pending(ctx)
        page = (await billing.get("/webhooks")).text
        assert "https://hooks.example.net/coobill" in page
        assert page.count('data-state="failed"') == 1
        assert page.count('data-state="pending"') == 1
        assert "HTTP 503" in page
        failed = (await billing.get("/webhooks", params={"state": "failed"})).text
        assert failed.count("<code>recharge</code>") == 1
        assert "<code>adjustment</code>" not in failed

    async def test_retry_sends_one_again_and_a_bad_id_is_a_400(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        failed, _ = await one_failed_one_pending(ctx)
        done = await billing.post("/webhooks/retry", data={"id": str(failed.id)})
        assert done.status_code == 303
        assert "notice=webhooks_retried" in done.headers["location"]
        assert await outbox.state_counts(ctx) == {"pending": 2, "delivered": 0, "failed": 0}
        refused = await billing.post("/webhooks/retry", data={"id": "12x"})
        assert refused.status_code == 400
        assert "whole number" in refused.text
        unknown = await billing.post("/webhooks/retry", data={"id": "999"})
        assert unknown.status_code == 400
        assert "no such webhook event" in unknown.text

    async def test_a_urls_credentials_are_masked(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        ctx.config = settings_for(str(ctx.config.database.url), webhooks={
            "urls": ["https://coobill:pa55-w0rd@hooks.example.net/in?token=t0ken-value"],
            "secret": "s" * 32})
        page = (await billing.get("/webhooks")).text
        assert "https://coobill:***@hooks.example.net/in?token=***" in page
        assert "pa55-w0rd" not in page
        assert "t0ken-value" not in page
        assert "s" * 32 not in page

    async def test_a_bad_state_filter_is_a_400(self, billing: httpx.AsyncClient) -> None:
        refused = await billing.get("/webhooks", params={"state": "lost"})
        assert refused.status_code == 400
        assert "state: must be one of" in refused.text


class TestFeesPage:
    async def test_add_a_fee_see_it_listed_and_remove_it(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await add_extension(ctx, "100", "Alice")
        added = await billing.post("/fees", data={
            "extension": "100", "amount": "3", "period": "weekly", "over_credit": "flag",
            "name": "Voicemail", "starts": "2026-11-02"})
        assert added.status_code == 303
        page = (await billing.get("/fees")).text
        assert "Voicemail" in page
        assert "2026-11-02" in page
        assert "flag it" in page
        [fee] = await fees.list_fees(ctx)
        assert (fee.extension, fee.period, fee.over_credit) == ("100", "weekly", "flag")
        assert (await billing.post(f"/fees/{fee.id}/remove")).status_code == 303
        assert await fees.list_fees(ctx) == []

    async def test_a_bad_field_is_shown_beside_it_and_nothing_is_added(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await add_extension(ctx, "100", "Alice")
        for data, field in [({"amount": "x"}, "amount"), ({"extension": "999"}, "extension"),
                            ({"starts": "someday"}, "starts"), ({"period": "daily"}, "period")]:
            page = await billing.post("/fees", data={
                "extension": "100", "amount": "1", "period": "monthly", "over_credit": "lock",
                **data})
            assert page.status_code == 400, field
            assert f'id="e-{field}"' in page.text, field
        assert await fees.list_fees(ctx) == []
        gone = await billing.post("/fees/77/remove")
        assert gone.status_code == 400
        assert "no such fee" in gone.text

    async def test_a_charged_fee_shows_among_the_recharge_records(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await add_extension(ctx, "100", "Alice")
        await balances.recharge(ctx, ["100"], "10")
        await fees.add_fee(ctx, "100", "4", name="Line")
        await fees.charge_due(ctx)
        page = (await billing.get("/recharges")).text
        assert page.count('class="fee"') == 1
        assert "fee: Line" in page


async def a_month(ctx: BillingContext) -> str:
    """100 (Alice) recharged 10 and adjusted by -1 this month: the month, YYYY-MM."""
    await add_extension(ctx, "100", "Alice")
    await balances.recharge(ctx, ["100"], "10")
    await balances.adjust(ctx, "100", "-1")
    return ctx.clock().strftime("%Y-%m")


class TestStatementsPage:
    async def test_the_month_lists_each_billed_extension_with_its_balances(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        month = await a_month(ctx)
        page = (await billing.get("/statements", params={"month": month})).text
        assert "Alice[100]" in page
        assert "US$9.0000" in page
        assert f"/statements/view?month={month}&amp;extension=100" in page

    async def test_one_statement_as_a_page_in_the_users_language_and_as_pdf(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        month = await a_month(ctx)
        shown = await billing.get("/statements/view", params={"month": month, "extension": "100"})
        assert shown.status_code == 200
        assert "Closing balance" in shown.text
        assert 'href="/statements/style.css"' in shown.text
        assert (await billing.get("/statements/style.css")).headers["content-type"].startswith(
            "text/css")
        await billing.post("/language", data={"language": "zh", "next": "/statements"})
        chinese = await billing.get("/statements/view", params={"month": month, "extension": "100"})
        assert "期末余额" in chinese.text
        pdf = await billing.get("/statements/view",
                                params={"month": month, "extension": "100", "format": "pdf"})
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF-")

    async def test_the_batch_is_a_zip_of_every_billed_extension(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        import io
        import zipfile

        month = await a_month(ctx)
        await add_extension(ctx, "101", "Bob")
        got = await billing.get("/statements/batch", params={"month": month})
        names = sorted(zipfile.ZipFile(io.BytesIO(got.content)).namelist())
        assert names == [f"statement-{n}-{month}.{x}"
                         for n in ("100", "101") for x in ("html", "pdf")]

    async def test_a_bad_month_or_extension_is_a_400_or_404_with_its_reason(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        refused = await billing.get("/statements", params={"month": "2027-13"})
        assert refused.status_code == 400
        assert "is not a month" in refused.text
        unknown = await billing.get("/statements/view", params={"month": "2027-01",
                                                                "extension": "999"})
        assert unknown.status_code == 404
        assert "extension 999 does not exist" in unknown.text

    async def test_the_month_after_the_last_a_date_can_hold_is_a_400(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        """9999-12 ends in a year no date can hold (review: it was a 500)."""
        await add_extension(ctx, "100", "Alice")
        for path in ("/statements", "/statements/view", "/statements/batch"):
            answer = await billing.get(path, params={"month": "9999-12", "extension": "100"})
            assert answer.status_code == 400, path
            assert "month" in answer.text
