"""Which rate the gate and the quote choose by day of the week and holiday, in the PBX's
zone (America/New_York, not UTC): across midnight, and across both DST changes of 2026,
where the same UTC hour is another local day than a fixed offset would say."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from coobill.errors import BadRequest, UnknownHoliday
from coobill.services import holidays, rates
from coobill.services.context import BillingContext
from coobill.services.settings import change_settings
from tests.conftest import FakeClock
from tests.services.conftest import authorize, make_extension, make_rate


async def office(ctx: BillingContext) -> dict[str, int]:
    await change_settings(ctx, timezone="America/New_York")
    await make_extension(ctx, "100", balance="50")
    ids = {
        "weekend": (await make_rate(ctx, "00", rate="0.02", days="sat,sun", remark="weekend")).id,
        "holiday": (await make_rate(ctx, "00", rate="0.03", holidays="only", remark="holiday")).id,
        "weekday": (await make_rate(ctx, "00", rate="0.05", days="mon,tue,wed,thu,fri",
                                    holidays="except", remark="weekday")).id,
        # Friday night: its window crosses midnight, and belongs to Friday minute by minute.
        "friday_night": (await make_rate(ctx, "001", rate="0.01", days="fri", start="22:00",
                                         end="06:00", remark="friday night")).id,
    }
    await holidays.add_holiday(ctx, "2026-12-25", yearly=True, name="Christmas")
    await holidays.add_holiday(ctx, "2026-11-26", name="Thanksgiving")
    return ids


# (UTC instant, number dialled, the rate that applies, why)
CASES = [
    ("2026-11-07 04:59", "0044", "weekday", "Fri 23:59 EST"),
    ("2026-11-07 05:00", "0044", "weekend", "Sat 00:00 EST: midnight crossed in New York"),
    ("2026-11-09 04:59", "0044", "weekend", "Sun 23:59 EST, Monday already in UTC"),
    ("2026-11-09 05:00", "0044", "weekday", "Mon 00:00 EST"),
    ("2026-11-07 03:30", "0012", "friday_night", "Fri 22:30 EST"),
    ("2026-11-06 10:30", "0012", "friday_night", "Fri 05:30 EST: the window's Friday morning"),
    ("2026-11-07 06:30", "0012", "weekend", "Sat 01:30 EST: past midnight, not Friday any more"),
    ("2026-11-07 11:01", "0012", "weekend", "Sat 06:01 EST"),
    # spring forward, 2026-03-08 02:00 EST -> 03:00 EDT
    ("2026-03-08 04:59", "0044", "weekend", "Sat 23:59 EST"),
    ("2026-03-08 07:30", "0044", "weekend", "Sun 03:30 EDT"),
    ("2026-03-09 03:59", "0044", "weekend", "Sun 23:59 EDT"),
    ("2026-03-09 04:30", "0044", "weekday", "Mon 00:30 EDT (a fixed -5 h would say Sunday)"),
    # fall back, 2026-11-01 02:00 EDT -> 01:00 EST
    ("2026-11-01 05:30", "0044", "weekend", "Sun 01:30 EDT, the first time"),
    ("2026-11-01 06:30", "0044", "weekend", "Sun 01:30 EST, the second time"),
    ("2026-11-02 04:30", "0044", "weekend", "Sun 23:30 EST (a fixed -4 h would say Monday)"),
    ("2026-11-02 05:00", "0044", "weekday", "Mon 00:00 EST"),
    # holidays: a dated one and a yearly one, on the local date
    ("2026-11-26 04:59", "0044", "weekday", "Wed 23:59 EST, the eve of Thanksgiving"),
    ("2026-11-26 05:00", "0044", "holiday", "Thanksgiving 00:00 EST, a weekday excluded"),
    ("2026-11-27 04:59", "0044", "holiday", "Thanksgiving 23:59 EST, Friday in UTC"),
    ("2027-11-25 17:00", "0044", "weekday", "a dated holiday does not come back"),
    ("2026-12-26 03:00", "0044", "holiday", "Christmas Fri 22:00 EST, the 26th in UTC"),
    ("2027-12-25 17:00", "0044", "weekend", "Christmas on a Saturday: both apply, the older wins"),
    ("2028-12-25 17:00", "0044", "holiday", "Christmas 2028, a Monday: yearly"),
]


@pytest.mark.parametrize(("instant", "number", "expected", "why"), CASES,
                         ids=[c[3] for c in CASES])
async def test_the_gate_and_the_quote_choose_by_the_local_day(
    ctx: BillingContext, clock: FakeClock, instant: str, number: str, expected: str, why: str
) -> None:
    ids = await office(ctx)
    clock.now = datetime.strptime(instant, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    verdict = await authorize(ctx, "c1", number=number)
    assert verdict.allowed, why
    assert verdict.rate_id == ids[expected], why
    quote = await rates.quote(ctx, "100", number)
    assert quote.rate is not None
    assert quote.rate.id == ids[expected], why


async def test_a_quote_at_a_given_local_moment(ctx: BillingContext) -> None:
    ids = await office(ctx)
    for at, expected in (("2026-12-25 12:00", "holiday"), ("2026-12-24 12:00", "weekday"),
                         ("2026-12-26 12:00", "weekend")):
        quote = await rates.quote(ctx, "100", "0044", at=at)
        assert quote.rate is not None
        assert quote.rate.id == ids[expected], at
    with pytest.raises(BadRequest) as bad:
        await rates.quote(ctx, "100", "0044", at="Christmas")
    assert bad.value.field == "at"


async def test_the_calendar_changes_the_gate_at_once(ctx: BillingContext, clock: FakeClock) -> None:
    ids = await office(ctx)
    clock.now = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)  # a Tuesday
    assert (await authorize(ctx, "c1")).rate_id == ids["weekday"]
    await holidays.add_holiday(ctx, "2026-12-01")
    assert (await authorize(ctx, "c2")).rate_id == ids["holiday"]
    assert await holidays.remove_holiday(ctx, day="2026-12-01") == 1
    assert (await authorize(ctx, "c3")).rate_id == ids["weekday"]


class TestTheHolidayCalendar:
    async def test_dates_and_yearly_dates_listed_and_removed(self, ctx: BillingContext) -> None:
        await office(ctx)
        listed = [(h.when, h.name) for h in await holidays.list_holidays(ctx)]
        assert listed == [("every 12-25", "Christmas"), ("2026-11-26", "Thanksgiving")]
        # a yearly holiday is removed by any year's date of it
        assert await holidays.remove_holiday(ctx, day="2031-12-25") == 1
        with pytest.raises(UnknownHoliday):
            await holidays.remove_holiday(ctx, day="2031-12-25")

    @pytest.mark.parametrize(("day", "yearly", "name", "field"), [
        ("2026-13-01", False, "", "day"), ("tomorrow", False, "", "day"),
        ("2026-11-26", False, "", "day"), ("2030-12-25", True, "", "day"),
        ("2026-01-01", False, "x" * 65, "name"), ("2026-01-01", "perhaps", "", "yearly"),
    ])
    async def test_bad_input_is_one_error_naming_its_field(
        self, ctx: BillingContext, day: str, yearly: object, name: str, field: str
    ) -> None:
        await office(ctx)
        with pytest.raises(BadRequest) as bad:
            await holidays.add_holiday(ctx, day, yearly=yearly, name=name)
        assert bad.value.field == field
        assert len(await holidays.list_holidays(ctx)) == 2


class TestCalendarFields:
    @pytest.mark.parametrize(("given", "field"), [
        ({"days": "mon,someday"}, "days"), ({"holidays": "sometimes"}, "holidays"),
        ({"valid_from": "2027-02-30 00:00"}, "valid_from"),
        ({"valid_from": "2027-01-01 00:00", "valid_until": "2027-01-01 00:00"}, "valid_until"),
        ({"split": "maybe"}, "split"),
    ])
    async def test_a_bad_calendar_field_is_refused_and_nothing_written(
        self, ctx: BillingContext, given: dict[str, object], field: str
    ) -> None:
        await make_extension(ctx, "100")
        with pytest.raises(BadRequest) as bad:
            await make_rate(ctx, "00", **given)
        assert bad.value.field == field
        assert await rates.list_rates(ctx) == []

    async def test_the_days_are_kept_in_the_week_s_order(self, ctx: BillingContext) -> None:
        view = await make_rate(ctx, "00", days="Sun, sat ,mon")
        assert view.fields.days == "mon,sat,sun"
        assert (await make_rate(ctx, "00", days="mon,tue,wed,thu,fri,sat,sun")).fields.days == ""
