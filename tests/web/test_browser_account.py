"""The account controls' pages in real headless Chromium (tests/web/test_browser.py's way)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Page, expect

from coobill.services import users
from coobill.services.context import BillingContext
from tests.web.billing_data import PASSWORD
from tests.web.served import chromium, serve_portal
from tests.web.test_account_pages import a_month, one_failed_one_pending
from tests.web.test_browser import log_in

pytestmark = pytest.mark.browser


@pytest.fixture
async def browser_page(ctx: BillingContext) -> AsyncIterator[tuple[str, Page]]:
    await users.add_user(ctx, "bill", PASSWORD, "billing")
    async with serve_portal(ctx) as url, chromium() as browser:
        context = await browser.new_context(viewport={"width": 1360, "height": 900})
        page = await context.new_page()
        page.set_default_timeout(10_000)
        yield url, page
        await context.close()


async def test_webhooks_show_a_failed_event_and_send_it_again(
    ctx: BillingContext, browser_page: tuple[str, Page]
) -> None:
    url, page = browser_page
    await one_failed_one_pending(ctx)
    await log_in(page, url)
    await page.click("nav >> text=Webhooks")
    rows = page.locator("#webhook-events tbody tr")
    await expect(rows).to_have_count(2)
    await expect(page.locator("tr[data-state=failed]")).to_contain_text("HTTP 503")
    await page.select_option("#f-state", "failed")
    await page.click("text=Filter")
    await expect(rows).to_have_count(1)
    await page.click("#retry-failed")
    await expect(page.locator(".notice")).to_have_text("1 event(s) will be sent again.")
    await expect(page.locator("tr[data-state=failed]")).to_have_count(0)
    await expect(page.locator("tr[data-state=pending]")).to_have_count(2)


async def test_add_a_fee_with_a_bad_amount_then_fix_it(
    ctx: BillingContext, browser_page: tuple[str, Page]
) -> None:
    url, page = browser_page
    await log_in(page, url)
    await page.click("nav >> text=Fees")
    await page.fill("#f-extension", "*")
    await page.fill("#f-amount", "1.23456")
    await page.select_option("#f-period", "weekly")
    await page.fill("#f-name", "Line rental")
    await page.click("#fee-form button[type=submit].primary")
    await expect(page.locator("#e-amount")).to_contain_text("more than 4 decimal places")
    await expect(page.locator("#f-name")).to_have_value("Line rental")
    await page.fill("#f-amount", "12.5")
    await page.click("#fee-form button[type=submit].primary")
    await expect(page.locator(".notice")).to_have_text("Fee added.")
    cells = page.locator("#fee-list tbody tr td")
    await expect(cells.nth(1)).to_have_text("Every billed extension")
    await expect(cells.nth(2)).to_have_text("Line rental")
    await expect(cells.nth(3)).to_have_text("US$12.5000")
    await expect(cells.nth(4)).to_have_text("weekly")


async def test_statements_of_the_month_and_one_opened_to_print(
    ctx: BillingContext, browser_page: tuple[str, Page]
) -> None:
    url, page = browser_page
    month = await a_month(ctx)
    await log_in(page, url)
    await page.click("nav >> text=Statements")
    await expect(page.locator("#f-month")).to_have_value(month)
    row = page.locator("#statement-list tbody tr")
    await expect(row).to_have_count(1)
    await expect(row.locator("td").nth(2)).to_have_text("US$9.0000")
    async with page.context.expect_page() as opened:
        await row.locator("text=View").click()
    statement = await opened.value
    await expect(statement.locator("h1")).to_have_text(f"Statement · {month}")
    await expect(statement.locator("tr.adjustment td.num").first).to_have_text("-US$1.0000")
    closing = statement.locator("table.summary tr.total").last
    await expect(closing).to_contain_text("Closing balance")
    # The linked stylesheet applied (the portal's policy refuses inline styles).
    weight = await closing.locator("td").first.evaluate("e => getComputedStyle(e).fontWeight")
    assert weight == "600"
