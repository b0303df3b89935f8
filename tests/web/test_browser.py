"""The portal in real headless Chromium, served by uvicorn on a loopback port."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from coobill.services import users
from coobill.services.context import BillingContext
from tests.web.billing_data import PASSWORD, office
from tests.web.served import chromium, serve_portal

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


async def log_in(page: Page, url: str) -> None:
    await page.goto(f"{url}/login")
    await page.fill("#f-name", "bill")
    await page.fill("#f-password", PASSWORD)
    await page.click("button[type=submit].primary")
    await expect(page.locator(".crumbs")).to_contain_text("Extensions")


async def test_log_in_and_recharge_a_batch(portal: tuple[str, Page]) -> None:
    url, page = portal
    await page.goto(f"{url}/extensions")
    await expect(page).to_have_url(f"{url}/login?next=/extensions")
    await page.fill("#f-name", "bill")
    await page.fill("#f-password", "not the password")
    await page.click("button[type=submit].primary")
    await expect(page.locator("#e-password")).to_have_text("Wrong user name or password.")
    await page.fill("#f-password", PASSWORD)
    await page.click("button[type=submit].primary")
    await expect(page).to_have_url(f"{url}/extensions")

    recharge = page.locator("button[formaction='/extensions/recharge']")
    await expect(recharge).to_be_disabled()
    await page.check("input[name=ext][value='100']")
    await page.check("input[name=ext][value='101']")
    await recharge.click()
    await expect(page.locator(".chosen .tag")).to_have_text(["100", "101"])
    await page.fill("#f-amount", "12.5")
    await page.click("button[type=submit].primary")
    await expect(page.locator(".notice")).to_have_text("Recharged 2 extension(s).")
    balances = page.locator("tbody tr td:nth-child(5)")
    await expect(balances).to_have_text(["US$56.1000", "US$62.4000", "US$50.0000"])


async def test_add_a_rate_with_a_bad_field_then_fix_it(portal: tuple[str, Page]) -> None:
    url, page = portal
    await log_in(page, url)
    await page.click("nav >> text=Rates")
    await page.click("text=Add")
    await page.fill("#f-remark", "Mobile")
    await page.fill("#f-prefix", "0")
    await page.fill("#f-length", "12")
    await page.fill("#f-rate", "0.12345")
    await page.select_option("#f-extensions", ["100", "101"])
    await page.click("button[type=submit].primary")
    await expect(page.locator("#e-rate")).to_contain_text("more than 4 decimal places")
    await expect(page.locator("#f-remark")).to_have_value("Mobile")
    await page.fill("#f-rate", "0.12")
    await page.click("button[type=submit].primary")
    await expect(page.locator(".notice")).to_have_text("Rate added.")
    row = page.locator("tbody tr", has_text="Mobile")
    await expect(row).to_contain_text("US$0.1200")
    await expect(row).to_contain_text("100, 101")


async def test_filter_call_records_and_download_the_csv(
    portal: tuple[str, Page], tmp_path: Path
) -> None:
    url, page = portal
    await log_in(page, url)
    await page.click("nav >> text=Call records")
    await expect(page.locator("tbody tr")).to_have_count(3)
    await page.fill("input[name=date_from]", "2026-11-21")
    await page.fill("input[name=date_to]", "2026-11-21")
    await page.fill("input[name=keyword]", "Alice")
    await page.click("button[type=submit].primary")
    await expect(page.locator("tbody tr")).to_have_count(1)
    await expect(page.locator("tbody tr")).to_contain_text("Alice[100]")
    await expect(page.locator("tbody tr")).to_contain_text("1:01:40")
    async with page.expect_download() as waiting:
        await page.click("[data-download]")
    download = await waiting.value
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    rows = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8-sig"))))
    assert [(r["date"], r["extension"], r["callee"], r["cost"]) for r in rows] == [
        ("2026-11-21 12:00:00", "100", "9777", "6.2000")
    ]


async def test_switch_to_chinese(portal: tuple[str, Page]) -> None:
    url, page = portal
    await log_in(page, url)
    await page.click("button[name=language][value=zh]")
    await expect(page.locator(".crumbs")).to_have_text("账单 / 分机")
    header = page.locator("thead th")
    for label in ("分机", "总充值金额", "余额", "信用额度", "支付方式", "状态"):
        await expect(header.filter(has_text=label).first).to_be_visible()
    await expect(page.locator("tbody tr").first).to_contain_text("预付费")
    await expect(page.locator("tbody tr").first).to_contain_text("未锁定")
    await page.click("nav >> text=费率")
    await expect(page.locator("thead")).to_contain_text("前缀")
    await page.reload()
    await expect(page.locator("thead")).to_contain_text("号码长度")


async def test_an_admin_sets_a_password_and_removes_a_user(
    ctx: BillingContext, portal: tuple[str, Page]
) -> None:
    url, page = portal
    await users.add_user(ctx, "root", PASSWORD, "admin")
    await page.goto(f"{url}/login")
    await page.fill("#f-name", "root")
    await page.fill("#f-password", PASSWORD)
    await page.click("button[type=submit].primary")
    await page.goto(f"{url}/users")
    rows = page.locator("#users tbody tr")
    await expect(rows).to_have_count(2)
    await page.select_option("#f-user", "bill")
    await page.fill("#f-new_password", "short")
    await page.click("form[action='/users/password'] button[type=submit]")
    await expect(page.locator(".field.invalid .error")).to_contain_text("at least 8 characters")
    await page.select_option("#f-user", "bill")
    await page.fill("#f-new_password", "a new secret")
    await page.click("form[action='/users/password'] button[type=submit]")
    await expect(page.locator(".notice")).to_contain_text("Password set.")
    assert await users.authenticate(ctx, "bill", "a new secret") is not None
    asked: list[str] = []

    async def answer(dialog) -> None:  # type: ignore[no-untyped-def]
        asked.append(dialog.message)
        await dialog.accept()

    page.on("dialog", answer)
    await page.click("button[aria-label='Remove bill']")
    await expect(page.locator(".notice")).to_contain_text("User removed.")
    assert asked == ["Remove this user?"]
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("(you)")


async def test_the_portal_keeps_the_language_of_the_login_page(portal: tuple[str, Page]) -> None:
    """A Chinese browser gets the login page in Chinese, and the portal after it too; a
    language chosen on the login page carries over the same way."""
    url, _ = portal
    async with chromium() as browser:
        chinese = await browser.new_context(locale="zh-CN", extra_http_headers={
            "Accept-Language": "zh-CN,zh;q=0.9"})
        page = await chinese.new_page()
        await page.goto(f"{url}/login")
        await expect(page.locator("button[type=submit].primary")).to_have_text("登录")
        await page.fill("#f-name", "bill")
        await page.fill("#f-password", PASSWORD)
        await page.click("button[type=submit].primary")
        await expect(page).to_have_url(f"{url}/extensions")
        await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        await expect(page.locator(".crumbs")).to_contain_text("分机")
        await chinese.close()

        english = await browser.new_context(locale="zh-CN", extra_http_headers={
            "Accept-Language": "zh-CN,zh;q=0.9"})
        page = await english.new_page()
        await page.goto(f"{url}/login")
        await page.click("a[lang=en]")
        await page.fill("#f-name", "bill")
        await page.fill("#f-password", PASSWORD)
        await page.click("button[type=submit].primary")
        await expect(page).to_have_url(f"{url}/extensions")
        await expect(page.locator("html")).to_have_attribute("lang", "en")
        await expect(page.locator(".crumbs")).to_contain_text("Extensions")
        await english.close()
