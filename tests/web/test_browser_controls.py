"""The account controls in the portal, in real headless Chromium: an extension's caps on its
edit form, the site's defaults on Settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from playwright.async_api import Page, expect

from coobill.services import extensions, users
from coobill.services.context import BillingContext
from coobill.services.settings import get_settings
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
    assert (view.cap_daily, view.max_price_minute, view.cap_monthly) == (Decimal(5), Decimal("0.25"), None)
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
    current = await get_settings(ctx)
    assert (current.cap_monthly, current.max_call_cost, current.cap_daily) == (Decimal(100), Decimal("3.5"), None)
