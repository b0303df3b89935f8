"""Recharge records, call records and statistics: whole days both ends included, a keyword
matching part of an extension's number or name in any case."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from coobill.errors import BadRequest
from coobill.services import balances, reports
from coobill.services.context import BillingContext
from coobill.services.reports import Period
from tests.conftest import FakeClock
from tests.services.conftest import ended, make_extension, make_rate, settle

CALLS = [
    # uniqueid, extension, caller name, start, billsec (cost at 0.10/60 s + 0.05/60 s)
    ("c1", "100", "Alice Martin", datetime(2026, 10, 31, 23, 59, 59), 61),  # 0.15
    ("c2", "100", "Alice Martin", datetime(2026, 11, 1, 0, 0, 0), 0),  # unanswered
    ("c3", "101", "Bob", datetime(2026, 11, 15, 12, 0, 0), 120),  # 0.15
    ("c4", "100", "Alice Martin", datetime(2026, 11, 30, 23, 59, 59), 30),  # 0.10
    ("c5", "101", "Bob", datetime(2026, 12, 1, 0, 0, 0), 60),  # 0.10
    ("c6", "100", "Alice Martin", datetime(2027, 1, 2, 10, 0, 0), 180),  # 0.20
]


@pytest.fixture
async def calls(ctx: BillingContext) -> None:
    await make_extension(ctx, "100", balance="100", name="Alice Martin")
    await make_extension(ctx, "101", balance="100", name="Bob")
    await make_rate(ctx, "00")
    for uniqueid, ext, name, start, billsec in CALLS:
        await settle(ctx, ended(uniqueid, extension=ext, name=name, start=start, billsec=billsec))


EVER = Period()


async def call_ids(
    ctx: BillingContext, period: Period = EVER, keyword: str | None = None
) -> list[str]:
    records, total = await reports.list_calls(ctx, period, keyword)
    assert total == len(records)
    return [r.uniqueid for r in records]


@pytest.mark.usefixtures("calls")
class TestCallRecords:
    async def test_calls_are_listed_newest_first_with_their_cost(self, ctx: BillingContext) -> None:
        records, total = await reports.list_calls(ctx)
        assert total == 6
        assert [r.uniqueid for r in records] == ["c6", "c5", "c4", "c3", "c2", "c1"]
        assert [r.cost for r in records] == [
            Decimal(c) for c in ("0.2", "0.1", "0.1", "0.15", "0", "0.15")
        ]

    async def test_a_date_range_holds_both_whole_days_it_names(self, ctx: BillingContext) -> None:
        november = Period.parse("2026-11-01", "2026-11-30")
        assert await call_ids(ctx, november) == ["c4", "c3", "c2"]
        assert await call_ids(ctx, Period.parse("2026-11-30", "2026-11-30")) == ["c4"]

    async def test_either_end_of_a_range_may_be_open(self, ctx: BillingContext) -> None:
        assert await call_ids(ctx, Period.parse("2026-12-01", None)) == ["c6", "c5"]
        assert await call_ids(ctx, Period.parse(None, "2026-10-31")) == ["c1"]

    async def test_a_keyword_matches_part_of_the_extension_or_name_in_any_case(
        self, ctx: BillingContext
    ) -> None:
        expected = {
            "alice": ["c6", "c4", "c2", "c1"], "MART": ["c6", "c4", "c2", "c1"],
            "101": ["c5", "c3"], "bob": ["c5", "c3"], "%": [], "_": [], "zed": [],
        }
        for keyword, uniqueids in expected.items():
            assert await call_ids(ctx, keyword=keyword) == uniqueids, keyword

    async def test_a_page_of_calls_carries_the_total(self, ctx: BillingContext) -> None:
        page, total = await reports.list_calls(ctx, offset=2, limit=2)
        assert ([r.uniqueid for r in page], total) == (["c4", "c3"], 6)


@pytest.mark.usefixtures("calls")
class TestStatistics:
    async def test_statistics_by_month_sum_calls_talk_time_and_cost_per_extension(
        self, ctx: BillingContext
    ) -> None:
        got = [
            (r.period, r.extension, r.calls, r.answered, r.total_seconds, r.average_seconds, r.cost)
            for r in await reports.statistics(ctx, "month", per_extension=True)
        ]
        assert got == [
            ("2026-10", "100", 1, 1, 61, 61, Decimal("0.15")),
            ("2026-11", "100", 2, 1, 30, 30, Decimal("0.1")),
            ("2026-11", "101", 1, 1, 120, 120, Decimal("0.15")),
            ("2026-12", "101", 1, 1, 60, 60, Decimal("0.1")),
            ("2027-01", "100", 1, 1, 180, 180, Decimal("0.2")),
        ]

    async def test_statistics_by_year(self, ctx: BillingContext) -> None:
        got = [
            (r.period, r.extension, r.calls, r.answered, r.total_seconds, r.average_seconds, r.cost)
            for r in await reports.statistics(ctx, "year", per_extension=True)
        ]
        assert got == [
            ("2026", "100", 3, 2, 91, 46, Decimal("0.25")),
            ("2026", "101", 2, 2, 180, 90, Decimal("0.25")),
            ("2027", "100", 1, 1, 180, 180, Decimal("0.2")),
        ]

    async def test_statistics_by_day_within_a_range_for_chosen_extensions(
        self, ctx: BillingContext
    ) -> None:
        rows = await reports.statistics(
            ctx, "day", Period.parse("2026-11-01", "2026-12-01"), ["101"], per_extension=True
        )
        assert [(r.period, r.extension, r.calls, r.cost) for r in rows] == [
            ("2026-11-15", "101", 1, Decimal("0.15")),
            ("2026-12-01", "101", 1, Decimal("0.1")),
        ]

    async def test_without_per_extension_each_period_is_one_row_for_all_extensions(
        self, ctx: BillingContext
    ) -> None:
        """As the appliance's and the portal's "All": the extensions counted together."""
        got = [(r.period, r.extension, r.calls, r.answered, r.total_seconds, r.cost)
               for r in await reports.statistics(ctx, "year")]
        assert got == [
            ("2026", reports.ALL_EXTENSIONS, 5, 4, 271, Decimal("0.5")),
            ("2027", reports.ALL_EXTENSIONS, 1, 1, 180, Decimal("0.2")),
        ]

    async def test_statistics_by_an_unknown_period_are_refused(self, ctx: BillingContext) -> None:
        with pytest.raises(BadRequest) as caught:
            await reports.statistics(ctx, "week")
        assert caught.value.field == "by"


class TestRechargeRecords:
    async def test_recharges_are_listed_by_day_and_keyword(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        await make_extension(ctx, "100", name="Alice Martin")
        await make_extension(ctx, "101", name="Bob")
        for day, number, amount in [(1, "100", "5"), (2, "101", "7"), (3, "100", "9")]:
            clock.now = datetime(2026, 11, day, 23, 59, 59, tzinfo=UTC)
            await balances.recharge(ctx, [number], amount, who="desk")
        records, total = await reports.list_recharges(ctx, Period.parse("2026-11-02", "2026-11-03"))
        assert total == 2
        assert [(r.time.day, r.extension, r.amount, r.balance_after, r.who) for r in records] == [
            (3, "100", Decimal("9"), Decimal("14"), "desk"),
            (2, "101", Decimal("7"), Decimal("7"), "desk"),
        ]
        records, _ = await reports.list_recharges(ctx, keyword="alice")
        assert [(r.name, r.balance_before) for r in records] == [
            ("Alice Martin", Decimal("5")), ("Alice Martin", Decimal("0")),
        ]


class TestPeriods:
    @pytest.mark.parametrize(
        ("first", "last", "field"),
        [("2026-13-01", None, "from"), (None, "yesterday", "to"),
         ("2026-11-02", "2026-11-01", "to")],
    )
    def test_a_bad_range_is_refused_by_its_field(
        self, first: str | None, last: str | None, field: str
    ) -> None:
        with pytest.raises(BadRequest) as caught:
            Period.parse(first, last)
        assert caught.value.field == field
