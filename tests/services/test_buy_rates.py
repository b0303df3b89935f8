"""Buy rates per trunk and the margin: a call record carries what the call cost on its trunk
beside what it was sold for; with billing.min_margin set, the gate refuses (no_margin) a call
whose first minute sells for less than the trunk's buy price plus the margin."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

import pytest

from coobill.config import BillingConfig
from coobill.errors import BadRequest
from coobill.services import rate_decks, rates, reports, settings
from coobill.services.commands import AuthorizeCall, Reason
from coobill.services.context import BillingContext
from coobill.services.gate import authorize_call
from tests.services.conftest import ended, make_extension, make_rate, rows, settle


def with_margin(ctx: BillingContext, margin: str | None) -> BillingContext:
    billing = BillingConfig(**{**ctx.config.billing.model_dump(), "min_margin": margin})
    return replace(ctx, config=ctx.config.model_copy(update={"billing": billing}))


async def office(ctx: BillingContext) -> None:
    await make_extension(ctx, "100", balance="10")
    # sold at 0.10 for the first minute, then 0.05 a minute
    await make_rate(ctx, "00", initial_cost="0.10", initial_time=60, rate="0.05", period=60)
    # carrier-a charges 0.06 a minute to 00, carrier-b 0.09; every trunk 0.20 to 0099
    await make_rate(ctx, "00", initial_cost="0", initial_time=0, rate="0.06", period=60,
                    extensions=None, trunk="carrier-a", remark="a")  # type: ignore[arg-type]
    await make_rate(ctx, "00", initial_cost="0", initial_time=0, rate="0.09", period=60,
                    extensions=None, trunk="carrier-b", remark="b")  # type: ignore[arg-type]
    await make_rate(ctx, "0099", initial_cost="0", initial_time=0, rate="0.20", period=60,
                    extensions=None, trunk="*", remark="any")  # type: ignore[arg-type]


def ask(uniqueid: str, trunk: str = "", number: str = "0012345678") -> AuthorizeCall:
    return AuthorizeCall(uniqueid, "100", number, channel="PJSIP/100-0001", trunk=trunk)


class TestTheMinimumMargin:
    @pytest.mark.parametrize(("trunk", "number", "margin", "allowed"), [
        ("carrier-a", "0012345678", "0.03", True),  # 0.10 >= 0.06 + 0.03
        ("carrier-a", "0012345678", "0.04", True),  # equal is enough
        ("carrier-a", "0012345678", "0.0401", False),
        ("carrier-b", "0012345678", "0.02", False),  # 0.10 < 0.09 + 0.02
        ("carrier-c", "0012345678", "5", True),  # no buy rate known for it: nothing to compare
        ("carrier-c", "0099123", "0", False),  # "*": every trunk's buy rate, above the sale
        ("", "0012345678", "5", True),  # the dialplan named no trunk
        ("carrier-b", "0012345678", None, True),  # no minimum margin configured
    ])
    async def test_the_gate_refuses_a_call_below_the_margin(
        self, ctx: BillingContext, trunk: str, number: str, margin: str | None, allowed: bool
    ) -> None:
        await office(ctx)
        verdict = await authorize_call(with_margin(ctx, margin), ask("c1", trunk, number))
        assert verdict.allowed is allowed
        if not allowed:
            assert verdict.reason == Reason.NO_MARGIN
            assert await rows(ctx, "SELECT count(*) FROM reservation") == [(0,)]

    @pytest.mark.parametrize(("configured", "set_here", "allowed"), [
        (None, "0.02", False),  # the ledger's setting applies: 0.10 < 0.09 + 0.02
        ("0.02", "0", True),  # it takes precedence over the configuration's
        ("0.02", "", False),  # cleared: the configuration's applies again
    ])
    async def test_the_minimum_margin_set_in_the_ledger_comes_before_the_configuration_s(
        self, ctx: BillingContext, configured: str | None, set_here: str, allowed: bool
    ) -> None:
        await office(ctx)
        await settings.change_settings(ctx, min_margin="5")
        changed = await settings.change_settings(ctx, min_margin=set_here)
        assert changed.min_margin == (Decimal(set_here) if set_here else None)
        verdict = await authorize_call(with_margin(ctx, configured), ask("c1", "carrier-b"))
        assert verdict.allowed is allowed

    async def test_a_bad_minimum_margin_is_refused_and_nothing_changes(
        self, ctx: BillingContext
    ) -> None:
        for bad in ("-0.01", "abc", "0.00001"):
            with pytest.raises(BadRequest) as refused:
                await settings.change_settings(ctx, currency="CNY", min_margin=bad)
            assert refused.value.field == "min_margin"
        after = await settings.billing_settings(ctx)
        assert (after.currency, after.min_margin) == ("USD", None)


class TestBuyCost:
    async def test_a_call_record_carries_its_trunk_s_buy_cost(self, ctx: BillingContext) -> None:
        await office(ctx)
        for uniqueid, trunk in (("c1", "carrier-a"), ("c2", "carrier-b"), ("c3", "elsewhere")):
            assert (await authorize_call(ctx, ask(uniqueid, trunk))).allowed
            await settle(ctx, ended(uniqueid, billsec=90, trunk=trunk,
                                    start=datetime(2026, 11, 22, 14, 25)))
        found = await rows(ctx, "SELECT uniqueid, trunk, cost, buy_cost FROM call ORDER BY id")
        # sold: 0.10 + 0.05; bought: two started minutes at the trunk's rate
        assert found == [("c1", "carrier-a", 1500, 1200), ("c2", "carrier-b", 1500, 1800),
                         ("c3", "elsewhere", 1500, None)]

    async def test_buy_rates_are_not_sell_rates(self, ctx: BillingContext) -> None:
        await make_extension(ctx, "100", balance="10")
        await make_rate(ctx, "00", extensions=None, trunk="carrier-a")  # type: ignore[arg-type]
        quote = await rates.quote(ctx, "100", "0012345678")
        assert quote.rate is None  # a buy rate never sells a call
        [view] = await rates.list_rates(ctx)
        assert (view.fields.trunk, view.fields.extensions) == ("carrier-a", ("*",))

    async def test_a_trunk_s_buy_deck_replaces_only_its_own_rates(
        self, ctx: BillingContext
    ) -> None:
        await office(ctx)
        deck = "prefix,description,rate_per_minute\n00,World,0.07\n"
        done = await rate_decks.import_rates(ctx, deck, trunk="carrier-a", replace_all=True)
        assert done.count == 1
        remarks = [(v.fields.trunk, v.fields.remark, v.fields.rate)
                   for v in await rates.list_rates(ctx)]
        assert remarks == [("", "", Decimal("0.0500")), ("carrier-b", "b", Decimal("0.0900")),
                           ("*", "any", Decimal("0.2000")),
                           ("carrier-a", "World", Decimal("0.0700"))]

    async def test_a_bad_trunk_is_one_error(self, ctx: BillingContext) -> None:
        with pytest.raises(BadRequest) as bad:
            await make_rate(ctx, "00", extensions=None, trunk="two words")  # type: ignore[arg-type]
        assert bad.value.field == "trunk"


class TestMarginReports:
    async def test_records_and_statistics_by_trunk_show_revenue_cost_and_margin(
        self, ctx: BillingContext
    ) -> None:
        await office(ctx)
        start = datetime(2026, 11, 22, 14, 25)
        for uniqueid, trunk, billsec in (("c1", "carrier-a", 90), ("c2", "carrier-a", 30),
                                         ("c3", "carrier-b", 90), ("c4", "elsewhere", 60)):
            assert (await authorize_call(ctx, ask(uniqueid, trunk))).allowed
            await settle(ctx, ended(uniqueid, billsec=billsec, trunk=trunk, start=start))
        records, _ = await reports.list_calls(ctx)
        by_call = {r.uniqueid: (r.cost, r.buy_cost, r.margin) for r in records}
        assert by_call["c1"] == (Decimal("0.1500"), Decimal("0.1200"), Decimal("0.0300"))
        assert by_call["c3"] == (Decimal("0.1500"), Decimal("0.1800"), Decimal("-0.0300"))
        assert by_call["c4"] == (Decimal("0.1000"), None, None)
        trunks = await reports.trunk_statistics(ctx)
        assert [(t.trunk, t.calls, t.total_seconds, t.revenue, t.buy_cost, t.margin)
                for t in trunks] == [
            ("carrier-a", 2, 120, Decimal("0.2500"), Decimal("0.1800"), Decimal("0.0700")),
            ("carrier-b", 1, 90, Decimal("0.1500"), Decimal("0.1800"), Decimal("-0.0300")),
            # no buy rate: its revenue is not counted as margin
            ("elsewhere", 1, 60, Decimal("0.1000"), Decimal("0"), Decimal("0")),
        ]
