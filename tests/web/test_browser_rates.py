"""Issue 17's pages in real headless Chromium: a weekend-and-holiday rate, a dated deck
imported after reviewing its diff, a trunk's buy deck imported and the minimum margin set, and
the margins in the records and by trunk."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from playwright.async_api import Page, expect

from coobill.services import users
from coobill.services.context import BillingContext
from tests.web.billing_data import PASSWORD, add_rate, office, place_call
from tests.web.served import chromium, serve_portal
from tests.web.test_browser import log_in

pytestmark = pytest.mark.browser


@pytest.fixture
async def portal(ctx: BillingContext) -> AsyncIterator[tuple[str, Page]]:
    """(base URL, a fresh browser page) with the office ledger and billing user "bill"."""
    await office(ctx)
    await users.add_user(ctx, "bill", PASSWORD, "billing")
    async with serve_portal(ctx) as url, chromium() as browser:
        context = await browser.new_context(viewport={"width": 1360, "height": 900})
        page = await context.new_page()
        page.set_default_timeout(10_000)
        yield url, page
        await context.close()


async def test_add_a_weekend_and_holiday_rate(portal: tuple[str, Page]) -> None:
    url, page = portal
    await log_in(page, url)
    await page.click("nav >> text=Rates")
    await page.click(".toolbar >> text=Holidays")
    await page.fill("#f-day", "2026-12-25")
    await page.check("#f-yearly")
    await page.fill("#f-name", "Christmas")
    await page.click("button[type=submit].primary")
    await expect(page.locator(".notice")).to_have_text("Holiday added.")
    await expect(page.locator("[data-holidays] tbody tr")).to_contain_text(
        ["Every year on 12-25"])

    for remark, choose in (("Weekend", "days"), ("Holiday", "holidays")):
        await page.goto(f"{url}/rates/new")
        await page.fill("#f-remark", remark)
        await page.fill("#f-prefix", "9")
        await page.fill("#f-rate", "0.05")
        if choose == "days":
            await page.check("input[name=days][value=sat]")
            await page.check("input[name=days][value=sun]")
        else:
            await page.select_option("#f-holidays", "only")
        await page.select_option("#f-extensions", ["*"])
        await page.click("button[type=submit].primary")
        await expect(page.locator(".notice")).to_have_text("Rate added.")
    await expect(page.locator("tbody tr", has_text="Weekend").locator("[data-calendar]")
                 ).to_have_text("Sat Sun")
    await expect(page.locator("tbody tr", has_text="Holiday").locator("[data-calendar]")
                 ).to_have_text("Every day · Only on holidays")


async def test_import_a_dated_deck_after_reviewing_its_diff(portal: tuple[str, Page]) -> None:
    url, page = portal
    await log_in(page, url)
    await page.click("nav >> text=Rates")
    await page.click(".toolbar >> text=Import")
    deck = ("prefix,description,rate_per_minute,connect_fee,initial_increment,increment\n"
            "9,Local 2027,0.2,,60,60\n0044,UK,0.06,0.01,30,6\n")
    await page.set_input_files("#f-file", files=[
        {"name": "carrier.csv", "mimeType": "text/csv", "buffer": deck.encode()}])
    await page.fill("#f-from", "2027-01-01T00:00")
    await page.click("button[type=submit].primary")
    review = page.locator("[data-review]")
    await expect(review).to_contain_text("takes effect at 2027-01-01 00:00")
    await expect(page.locator("[data-diff-summary]")).to_have_text(
        "1 added, 0 removed, 1 changed, 0 unchanged")
    await expect(page.locator("[data-diff] tr.changed")).to_contain_text(
        "0.0000 for 0 s, then 0.1000 per 60 s")
    await expect(page.locator("[data-diff] tr.added")).to_contain_text("0044")
    await page.click("text=Confirm import")
    await expect(page.locator(".notice")).to_have_text("2 rate(s) imported.")
    await expect(page.locator("tbody tr", has_text="UK").locator("[data-calendar]")
                 ).to_contain_text("from 2027-01-01 00:00")
    await expect(page.locator("tbody tr").first.locator("[data-calendar]")).to_contain_text(
        "until 2027-01-01 00:00")


async def test_the_margin_columns_and_the_by_trunk_chart(
    portal: tuple[str, Page], ctx: BillingContext
) -> None:
    url, page = portal
    await add_rate(ctx, "9", "0.04", trunk="trunk-a")
    await place_call(ctx, "c4", "101", "9888", 120, datetime(2026, 11, 22, 9, 0, 0))
    await log_in(page, url)
    await page.click("nav >> text=Call records")
    row = page.locator("tbody tr", has_text="9888")
    await expect(row.locator("[data-buy-cost]")).to_have_text("US$0.0800")
    await expect(row.locator("[data-margin]")).to_have_text("US$0.1200")
    await expect(page.locator("thead")).to_contain_text("Margin")
    await page.click("nav >> text=Statistics")
    await page.select_option("select[name=by]", "trunk")
    await page.click("button[type=submit].primary")
    await expect(page.locator("[data-trunks] tbody tr")).to_have_count(1)
    await expect(page.locator("[data-trunks] tbody tr")).to_contain_text("trunk-a")
    await expect(page.locator("[data-trunks] tbody tr")).to_contain_text("US$0.1200")
    chart = page.locator("svg").first
    await expect(chart).to_be_visible()
    await expect(chart).to_contain_text("trunk-a")


async def test_import_a_trunk_s_buy_deck_and_set_the_minimum_margin(
    portal: tuple[str, Page],
) -> None:
    url, page = portal
    await log_in(page, url)
    await page.goto(f"{url}/rates/import")
    await page.set_input_files("#f-file", files=[{
        "name": "carrier-a.csv", "mimeType": "text/csv",
        "buffer": b"prefix,description,rate_per_minute\n0044,UK buy,0.04\n"}])
    await page.fill("#f-trunk", "carrier-a")
    await page.click("button[type=submit].primary")
    await expect(page.locator("[data-review]")).to_contain_text(
        "The buy rates of trunk carrier-a")
    await expect(page.locator("[data-diff-summary]")).to_have_text(
        "1 added, 0 removed, 0 changed, 0 unchanged")
    await page.click("text=Confirm import")
    await expect(page.locator(".notice")).to_have_text("1 rate(s) imported.")
    await expect(page.locator("tbody tr", has_text="UK buy").locator("[data-calendar]")
                 ).to_contain_text("buy rate of carrier-a")

    await page.click("nav >> text=Settings")
    await page.fill("#f-min_margin", "0.03")
    await page.click("button[type=submit].primary")
    await expect(page.locator(".notice")).to_have_text("Saved.")
    await expect(page.locator("#f-min_margin")).to_have_value("0.0300")
