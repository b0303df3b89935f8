"""Statements: an extension's month from its ledger - opening balance, recharges, calls,
fees, adjustments, closing balance - adding up, in English and Chinese, as HTML and PDF. On
SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import contextlib
import re
import zlib
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from coobill.errors import BadRequest, UnknownExtension
from coobill.services import balances, extensions, fees, statement_render, statements
from coobill.services.context import BillingContext
from coobill.services.settings import change_settings
from tests.conftest import FakeClock
from tests.services.conftest import authorize, ended, make_extension, make_rate, settle


def at(clock: FakeClock, when: str) -> None:
    clock.now = datetime.fromisoformat(when).replace(tzinfo=UTC)


@pytest.fixture
async def january(ctx: BillingContext, clock: FakeClock) -> None:
    """100: 20 recharged in December; in January a recharge of 10, a call of 61 s (0.15),
    a fee of 5, an adjustment of -1.5; a recharge on February 1st."""
    at(clock, "2026-12-20T10:00:00")
    await make_extension(ctx, "100", balance="20", name="Alice")
    await make_rate(ctx, "00")
    at(clock, "2027-01-03T09:00:00")
    await balances.recharge(ctx, ["100"], "10", who="ann")
    await authorize(ctx, "c1")
    await settle(ctx, ended("c1", billsec=61, start=datetime(2027, 1, 3, 9, 30)))
    await fees.add_fee(ctx, "100", "5", name="Line rental", starts="2027-01-01")
    at(clock, "2027-01-15T12:00:00")
    await fees.charge_due(ctx)
    at(clock, "2027-01-31T23:59:00")
    await balances.adjust(ctx, "100", "-1.5", who="ann", note="refund")
    at(clock, "2027-02-01T00:00:00")
    await balances.recharge(ctx, ["100"], "7")


@pytest.mark.usefixtures("january")
class TestAStatement:
    async def test_it_opens_lists_the_month_and_closes_adding_up(
        self, ctx: BillingContext
    ) -> None:
        st = await statements.statement(ctx, "100", "2027-01")
        assert (st.extension, st.name, st.first_day.isoformat(), st.last_day.isoformat()) == (
            "100", "Alice", "2027-01-01", "2027-01-31")
        assert [(line.kind, line.amount) for line in st.lines] == [
            ("recharge", Decimal("10")), ("call", Decimal("-0.15")), ("fee", Decimal("-5")),
            ("adjustment", Decimal("-1.5"))]
        assert st.opening == Decimal("20")
        assert st.closing == Decimal("23.35")
        assert st.lines[-1].balance == st.closing
        assert [st.total(k) for k in statements.KINDS] == [
            Decimal("10"), Decimal("-0.15"), Decimal("-5"), Decimal("-1.5")]
        assert (st.lines[1].description, st.lines[1].seconds) == ("0012345678", 61)
        assert st.lines[2].description == "fee: Line rental"

    async def test_the_next_month_opens_with_this_ones_closing(
        self, ctx: BillingContext
    ) -> None:
        february = await statements.statement(ctx, "100", "2027-02")
        assert february.opening == Decimal("23.35")
        assert february.closing == (await extensions.show_extension(ctx, "100")).balance

    async def test_html_in_english_and_chinese_in_the_ledgers_currency(
        self, ctx: BillingContext
    ) -> None:
        await change_settings(ctx, currency="CNY")
        st = await statements.statement(ctx, "100", "2027-01")
        english = statement_render.to_html(st, "en")
        assert "Opening balance" in english
        assert "¥20.0000" in english
        assert "¥23.3500" in english
        assert "-¥0.1500" in english
        assert "01:01" in english
        chinese = statement_render.to_html(st, "zh")
        assert 'lang="zh-CN"' in chinese
        assert "期初余额" in chinese
        assert "期末余额" in chinese

    async def test_a_pdf_in_english_carries_its_figures_and_in_chinese_a_cjk_font(
        self, ctx: BillingContext
    ) -> None:
        st = await statements.statement(ctx, "100", "2027-01")
        english = statement_render.to_pdf(st, "en")
        assert english.startswith(b"%PDF-")
        text = pdf_text(english)
        assert "Opening balance" in text
        assert "US$23.3500" in text
        assert "Line rental" in text
        chinese = statement_render.to_pdf(st, "zh")
        assert chinese.startswith(b"%PDF-")
        assert b"STSong-Light" in chinese

    async def test_the_months_batch_has_every_billed_extension(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "101", billing=False)
        await make_extension(ctx, "102")
        batch = await statements.statements_of_month(ctx, "2027-01")
        assert [s.extension for s in batch] == ["100", "102"]
        assert batch[1].lines == ()
        assert batch[1].opening == batch[1].closing == 0


class TestBadInput:
    async def test_a_bad_month_or_language_or_an_unknown_extension(
        self, ctx: BillingContext
    ) -> None:
        for month in ("2027-13", "2027-1", "27-01", "", "2027-00"):
            with pytest.raises(BadRequest, match=r"month: .* is not a month, YYYY-MM"):
                await statements.statement(ctx, "100", month)
        with pytest.raises(UnknownExtension):
            await statements.statement(ctx, "100", "2027-01")
        with pytest.raises(BadRequest, match="language: must be en or zh"):
            statement_render.check_language("fr")


def pdf_text(document: bytes) -> str:
    """The text the PDF's page streams show (its Tj strings), for a test to read."""
    shown = []
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", document, re.S):
        data = stream.strip()
        if data.endswith(b"~>"):  # ReportLab's streams: ASCII85 over Flate
            data = base64.a85decode(data, adobe=True)
        with contextlib.suppress(zlib.error):
            data = zlib.decompress(data)
        shown += re.findall(rb"\((.*?)\) Tj", data)
    return " ".join(s.decode("latin-1") for s in shown)
