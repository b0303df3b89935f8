"""The account controls in the portal, in real headless Chromium: an extension's caps on its
edit form, the site's defaults on Settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from playwright.async_api import Page, expect

from coobill.services import extensions, users
from coobill.services.commands import AuthorizeCall, Reason, Verdict
from coobill.services.context import BillingContext
from coobill.services.refused import RefusedLog
from coobill.services.settings import billing_settings, change_settings
from tests.web.billing_data import PASSWORD, office
from tests.web.served import chromium, serve_portal
from tests.web.test_browser import log_in

pytestmark = pytest.mark.browser


@pytest.fixture
async def portal(ctx: BillingContext) -> AsyncIterator[tuple[str, Page]]:
    await office(ctx)
    await users.add_user(ctx, "bill", PASSWORD, "billing")
    async with serve_portal(ctx) as url, chromium() as browser:
        context = await browser.new_context(viewport={"width": 1360, "height": 900})
        page = await context.new_page()
        page.set_default_timeout(10_000)
        yield url, page
        await context.close()


async def test_set_an_extensions_caps_with_a_bad_one_fixed_beside_its_field(
    portal: tuple[str, Page], ctx: BillingContext
) -> None:
    url, page = portal
    await log_in(page, url)
    await page.click("tbody tr:has-text('Alice') >> text=Edit")
    await page.fill("#f-cap_daily", "5")
    await page.fill("#f-max_price_minute", "cheap")
    await page.click("button[type=submit].primary")
    await expect(page.locator("#e-max_price_minute")).to_contain_text("not a number")
    await expect(page.locator("#f-cap_daily")).to_have_value("5")
    await page.fill("#f-max_price_minute", "0.25")
    await page.click("button[type=submit].primary")
    await expect(page.locator(".notice")).to_be_visible()
    view = await extensions.show_extension(ctx, "100")
    assert view.cap_daily == Decimal(5)
    assert view.max_price_minute == Decimal("0.25")
    assert view.cap_monthly is None
    await page.goto(f"{url}/extensions/100/edit")
    await expect(page.locator("#f-cap_daily")).to_have_value("5.0000")
    await page.fill("#f-cap_daily", "")  # back to the site's default
    await page.click("button[type=submit].primary")
    await expect(page.locator(".notice")).to_be_visible()
    assert (await extensions.show_extension(ctx, "100")).cap_daily is None


async def test_set_the_sites_default_caps_on_settings(
    portal: tuple[str, Page], ctx: BillingContext
) -> None:
    url, page = portal
    await log_in(page, url)
    await page.click("nav >> text=Settings")
    await page.fill("#f-cap_monthly", "100")
    await page.fill("#f-max_call_cost", "3.5")
    await page.click("button[type=submit].primary")
    await expect(page.locator(".notice")).to_be_visible()
    await expect(page.locator("#f-cap_monthly")).to_have_value("100.0000")
    current = await billing_settings(ctx)
    assert current.cap_monthly == Decimal(100)
    assert current.max_call_cost == Decimal("3.5")
    assert current.cap_daily is None


async def test_call_records_filter_refused_calls_and_statistics_count_them(
    portal: tuple[str, Page], ctx: BillingContext
) -> None:
    log = RefusedLog(ctx)
    log.note(AuthorizeCall("r1", "101", "9888"), Verdict.deny(Reason.CAP_DAILY), 0.0042)
    await log.flush()
    url, page = portal
    await log_in(page, url)
    await page.click("nav >> text=Call records")
    await expect(page.locator("tbody tr")).to_have_count(3)
    await page.select_option("select[name=outcome]", "refused")
    await page.click("button[type=submit].primary")
    rows = page.locator("table.refused tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows).to_contain_text("cap_daily")
    await expect(rows).to_contain_text("9888")
    await expect(rows).to_contain_text("4.200")
    await page.select_option("select[name=outcome]", "unanswered")
    await page.click("button[type=submit].primary")
    await expect(page.locator("tbody tr")).to_have_count(1)
    await expect(page.locator("tbody tr")).to_contain_text("No records match.")
    await page.click("nav >> text=Statistics")
    header = page.locator("thead th")
    await expect(header.last).to_have_text("Refused")
    refused_cells = page.locator("tbody tr td:last-child")
    await expect(refused_cells).to_have_text(["0", "0", "1"])


async def test_extensions_below_their_threshold_have_a_badge_and_a_filter(
    portal: tuple[str, Page], ctx: BillingContext
) -> None:
    # The office's balances: 100 has 43.60, 101 49.90, 102 50.00 (its own threshold: 10).
    await change_settings(ctx, controls={"low_balance": "49.95"})
    await extensions.set_extension(ctx, "102", extensions.ExtensionChanges(low_balance="10"))
    url, page = portal
    await log_in(page, url)
    badges = page.locator("tbody tr:has(.low-balance) td:nth-child(2)")
    await expect(badges).to_have_text(["100", "101"])
    await page.select_option("select[name=balance]", "low")
    await page.click("button[type=submit].primary")
    await expect(page).to_have_url(f"{url}/extensions?extension=&status=&payment=&balance=low")
    await expect(page.locator("tbody tr td:nth-child(2)")).to_have_text(["100", "101"])
