"""Recharge records, call records and statistics: filters, pages and CSV downloads."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import httpx

from coobill.services.context import BillingContext
from tests.conftest import FakeClock
from tests.web.billing_data import add_rate, office, place_call


def rows_of(response: httpx.Response) -> list[dict[str, str]]:
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(response.text.lstrip("\ufeff"))))


class TestRechargeRecords:
    async def test_keyword_matches_part_of_the_extension_or_its_name(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await office(ctx)
        by_name = (await billing.get("/api/recharges?keyword=ali")).json()
        assert by_name["total"] == 1
        assert by_name["items"][0]["extension"] == "100"
        record = by_name["items"][0]
        assert (record["balance_before"], record["amount"], record["balance_after"]) == (
            "0.0000",
            "50.0000",
            "50.0000",
        )
        assert (await billing.get("/api/recharges?keyword=10")).json()["total"] == 3

    async def test_the_date_range_includes_both_days(
        self, ctx: BillingContext, clock: FakeClock, billing: httpx.AsyncClient
    ) -> None:
        await office(ctx)
        clock.advance(86400)
        await billing.post("/api/extensions/recharge", json={"extensions": ["101"], "amount": "5"})
        assert (await billing.get("/api/recharges?date_from=2026-11-23")).json()["total"] == 1
        assert (await billing.get("/api/recharges?date_to=2026-11-22")).json()["total"] == 3
        both = await billing.get("/api/recharges?date_from=2026-11-22&date_to=2026-11-23")
        assert both.json()["total"] == 4

    async def test_a_bad_range_is_refused_beside_its_field(
        self, billing: httpx.AsyncClient
    ) -> None:
        api = await billing.get("/api/recharges?date_from=2026-11-23&date_to=2026-11-01")
        assert api.status_code == 400
        assert api.json()["field"] == "to"
        page = await billing.get("/recharges?date_from=yesterday")
        assert page.status_code == 400
        assert 'id="e-date_from"' in page.text

    async def test_the_page_shows_name_and_extension_and_links_the_filtered_csv(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await office(ctx)
        page = (await billing.get("/recharges?keyword=Bob")).text
        assert "Bob[101]" in page
        assert "Alice[100]" not in page
        assert "/api/recharges.csv?keyword=Bob" in page

    async def test_the_csv_escapes_formulas(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await office(ctx)
        rows = rows_of(await billing.get("/api/recharges.csv?keyword=102"))
        assert len(rows) == 1
        assert rows[0]["name"] == '\'=HYPERLINK("http://x")'
        assert rows[0]["amount"] == "50.0000"
        assert rows[0]["who"] == "setup"


class TestCallRecords:
    async def test_filtered_by_day_and_keyword(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await office(ctx)
        day = (await billing.get("/api/calls?date_from=2026-11-21&date_to=2026-11-21")).json()
        assert day["total"] == 2
        long_call = (await billing.get("/api/calls?keyword=9777")).json()["items"][0]
        assert long_call["billable_time"] == "1:01:40"
        assert long_call["name"] == "Alice"
        assert long_call["trunk"] == "trunk-a"
        assert long_call["cost"] == "6.2000"
        assert long_call["date"] == "2026-11-21 12:00:00"

    async def test_the_page_shows_caller_callee_duration_and_cost(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await office(ctx)
        page = (await billing.get("/calls?keyword=Bob")).text
        assert "Bob[101]" in page
        assert "9666" in page
        assert "00:30" in page
        assert "US$0.1000" in page
        assert "9555" not in page

    async def test_the_csv_has_the_filtered_calls_with_formulas_escaped(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await office(ctx)
        await place_call(
            ctx,
            "c4",
            "102",
            "9888",
            10,
            datetime(2026, 11, 22, 9, 0),
            trunk="@trunk",
            name="=cmd|' /C calc'!A0",
        )
        rows = rows_of(await billing.get("/api/calls.csv?keyword=102"))
        assert [r["callee"] for r in rows] == ["9888"]
        assert rows[0]["name"].startswith("'=")
        assert rows[0]["trunk"] == "'@trunk"
        assert rows[0]["billable_time"] == "00:10"
        all_rows = rows_of(await billing.get("/api/calls.csv"))
        assert len(all_rows) == 4


class TestStatistics:
    async def test_by_day_for_all_extensions_together(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await office(ctx)
        rows = (await billing.get("/api/statistics?by=day")).json()
        assert [
            (r["date"], r["extension"], r["calls"], r["total_duration"], r["total_cost"])
            for r in rows
        ] == [
            ("2026-11-20", "All", 1, "01:30", "0.2000"),
            ("2026-11-21", "All", 2, "1:02:10", "6.3000"),
        ]
        assert rows[1]["average_duration"] == "31:05"

    async def test_by_month_per_chosen_extension(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await office(ctx)
        rows = (
            await billing.get("/api/statistics?by=month&extension=100&extension=101&split=true")
        ).json()
        assert [(r["date"], r["extension"], r["calls"]) for r in rows] == [
            ("2026-11", "100", 2),
            ("2026-11", "101", 1),
        ]
        year = (await billing.get("/api/statistics?by=year&extension=101")).json()
        assert [(r["date"], r["extension"], r["total_seconds"]) for r in year] == [
            ("2026", "All", 30)
        ]

    async def test_a_bad_grouping_is_refused(self, billing: httpx.AsyncClient) -> None:
        response = await billing.get("/api/statistics?by=week")
        assert response.status_code == 400
        assert response.json()["field"] == "by"
        assert (await billing.get("/statistics?by=week")).status_code == 400

    async def test_the_page_draws_the_chart_and_links_the_csv(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await office(ctx)
        page = (await billing.get("/statistics?by=day&split=on")).text
        assert "<svg" in page
        assert page.count('class="bar"') == 2
        assert "polyline" in page
        assert "/api/statistics.csv?by=day&amp;split=on" in page
        rows = rows_of(await billing.get("/api/statistics.csv?by=day&split=on"))
        assert [(r["date"], r["extension"], r["total_cost"]) for r in rows] == [
            ("2026-11-20", "100", "0.2000"),
            ("2026-11-21", "100", "6.2000"),
            ("2026-11-21", "101", "0.1000"),
        ]

    async def test_no_calls_no_chart(self, billing: httpx.AsyncClient) -> None:
        page = (await billing.get("/statistics")).text
        assert "<svg" not in page
        assert "No calls in this period" in page


class TestMargins:
    async def test_records_statistics_by_trunk_and_their_csv_show_the_margin(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await office(ctx)  # calls on trunk-a at 0.1 a minute
        await add_rate(ctx, "9", "0.04", trunk="trunk-a")
        await place_call(ctx, "c4", "101", "9888", 120, datetime(2026, 11, 22, 9, 0, 0))
        page = (await billing.get("/calls")).text
        assert "US$0.0800" in page  # c4: bought for two minutes at 0.04
        assert "US$0.1200" in page  # its margin: 0.20 - 0.08
        listed = list(csv.DictReader(io.StringIO((await billing.get("/api/calls.csv")).text)))
        c4 = next(r for r in listed if r["uniqueid"] == "c4")
        assert (c4["cost"], c4["buy_cost"], c4["margin"]) == ("0.2000", "0.0800", "0.1200")
        assert next(r for r in listed if r["uniqueid"] == "c1")["margin"] == ""
        trunks = (await billing.get("/statistics?by=trunk")).text
        assert "data-trunks" in trunks
        assert "By trunk" in trunks
        assert "trunk-a" in trunks
        assert "/api/statistics/trunks.csv?by=trunk" in trunks
        [row] = (await billing.get("/api/statistics/trunks")).json()
        assert (row["trunk"], row["calls"], row["buy_cost"], row["margin"]) == (
            "trunk-a", 4, "0.0800", "0.1200")
        download = await billing.get("/api/statistics/trunks.csv")
        assert download.text.lstrip("\ufeff").splitlines()[0] == (
            "trunk,calls,answered,total_duration,total_seconds,revenue,buy_cost,margin")
