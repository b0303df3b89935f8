"""A quote: the rate a call would get, what N seconds cost, and the talk time the funds buy."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from coobill.errors import BadRequest, UnknownExtension
from coobill.services import rates
from coobill.services.context import BillingContext
from tests.conftest import FakeClock
from tests.services.conftest import authorize, make_extension, make_rate


class TestQuote:
    async def test_a_quote_gives_the_rate_the_cost_and_the_limit(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, "100", balance="0.5", credit="0.5")
        view = await make_rate(ctx, "00", remark="intl")
        q = await rates.quote(ctx, "100", "0012345678", seconds=61)
        assert q.rate is not None
        assert (q.rate.id, q.rate.remark) == (view.id, "intl")
        assert (q.cost, q.funds, q.limit_seconds) == (Decimal("0.15"), Decimal("1"), 1140)

    async def test_a_quote_counts_what_live_calls_hold(self, ctx: BillingContext) -> None:
        await make_extension(ctx, "100", balance="1")
        await make_rate(ctx, "00")
        await authorize(ctx, "c1")
        q = await rates.quote(ctx, "100", "0012345678")
        assert (q.funds, q.limit_seconds) == (0, 0)

    async def test_a_quote_at_a_given_time_uses_that_time_s_rate(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        await make_extension(ctx, "100", balance="1")
        await make_rate(ctx, "00", start="08:00", end="17:59", remark="day")
        await make_rate(ctx, "00", start="18:00", end="07:59", remark="night")
        clock.set_local("12:00")
        assert (await rates.quote(ctx, "100", "00123")).rate.remark == "day"  # type: ignore[union-attr]
        night = await rates.quote(ctx, "100", "00123", at="23:30")
        assert night.rate is not None
        assert night.rate.remark == "night"

    async def test_a_quote_without_a_rate_says_so(self, ctx: BillingContext) -> None:
        await make_extension(ctx, "100", balance="1")
        q = await rates.quote(ctx, "100", "0012345678")
        assert (q.rate, q.cost, q.limit_seconds) == (None, None, None)

    async def test_a_quote_for_too_little_money_buys_nothing(self, ctx: BillingContext) -> None:
        await make_extension(ctx, "100", balance="0.05")
        await make_rate(ctx, "00")
        assert (await rates.quote(ctx, "100", "0012345678")).limit_seconds == 0

    async def test_a_bad_quote_is_refused_by_its_field(self, ctx: BillingContext) -> None:
        await make_extension(ctx, "100")
        cases: list[tuple[str, dict[str, Any], str]] = [
            ("00-12", {}, "number"), ("", {}, "number"), ("0012", {"at": "25:00"}, "at"),
            ("0012", {"seconds": -1}, "seconds"),
        ]
        for number, kwargs, field in cases:
            with pytest.raises(BadRequest) as caught:
                await rates.quote(ctx, "100", number, **kwargs)
            assert caught.value.field == field, (number, kwargs)

    async def test_a_quote_for_an_unknown_extension_raises_unknown_extension(
        self, ctx: BillingContext
    ) -> None:
        with pytest.raises(UnknownExtension):
            await rates.quote(ctx, "404", "0012")
