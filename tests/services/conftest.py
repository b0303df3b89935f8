"""Helpers for the service tests: extensions, rates and calls in billing terms, and a second
daemon on the same ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from coobill.bootstrap import bootstrap
from coobill.services import balances, extensions, rates
from coobill.services.commands import AuthorizeCall, Disposition, SettleCall, Settlement, Verdict
from coobill.services.context import BillingContext
from coobill.services.gate import authorize_call
from coobill.services.rate_fields import check_rate_fields
from coobill.services.rates import RateView
from coobill.services.settlement import settle_call
from coobill.storage.db import create_engine
from coobill.storage.uow import UnitOfWorkFactory
from tests.conftest import LEDGER_KEY, FakeClock, pg_engine, settings_for


async def make_extension(
    ctx: BillingContext,
    number: str = "100",
    *,
    balance: str = "0",
    credit: str = "0",
    billing: bool = True,
    name: str = "",
    payment: str = "prepaid",
) -> extensions.ExtensionView:
    """An extension with billing on (by default) and `balance` recharged into it."""
    view = await extensions.set_extension(
        ctx, number,
        extensions.ExtensionChanges(
            name=name, billing=billing, credit_limit=Decimal(credit), payment=payment
        ),
    )
    if Decimal(balance) > 0:
        await balances.recharge(ctx, [number], balance, who="test")
        view = await extensions.show_extension(ctx, number)
    return view


async def make_rate(
    ctx: BillingContext,
    prefix: str = "00",
    *,
    length: int = 0,
    initial_cost: str = "0.1000",
    initial_time: int = 60,
    rate: str = "0.0500",
    period: int = 60,
    start: str = "00:00",
    end: str = "23:59",
    extensions: str = "*",
    remark: str = "",
    enabled: bool = True,
    **calendar: object,
) -> RateView:
    """A rate; `calendar`: days, holidays, valid_from, valid_until, split."""
    return await rates.add_rate(
        ctx,
        check_rate_fields(
            prefix=prefix, number_length=length, initial_cost=initial_cost,
            initial_seconds=initial_time, rate=rate, period_seconds=period, start=start, end=end,
            extensions=extensions, remark=remark, enabled=enabled, **calendar,
        ),
    )


async def authorize(
    ctx: BillingContext, uniqueid: str, extension: str = "100", number: str = "0012345678"
) -> Verdict:
    return await authorize_call(ctx, AuthorizeCall(uniqueid, extension, number, channel="PJSIP/x"))


START = datetime(2026, 11, 22, 14, 25, 0)


def ended(
    uniqueid: str,
    *,
    extension: str = "100",
    number: str = "0012345678",
    billsec: int = 0,
    answered: bool | None = None,
    start: datetime = START,
    trunk: str | None = "PJSIP/carrier-0001",
    gated: bool = True,
    name: str = "",
) -> SettleCall:
    """The SettleCall of a call that started at `start` and talked `billsec` seconds."""
    answered = billsec > 0 if answered is None else answered
    answer = start + timedelta(seconds=5) if answered else None
    end = (answer or start) + timedelta(seconds=billsec if answered else 20)
    return SettleCall(
        uniqueid=uniqueid, caller_extension=extension, caller_name=name, dialled_number=number,
        start=start, answer=answer, end=end, billable_seconds=billsec if answered else 0,
        disposition=Disposition.ANSWERED if answered else Disposition.NO_ANSWER,
        trunk=trunk, gated=gated,
    )


async def settle(ctx: BillingContext, cmd: SettleCall) -> Settlement | None:
    return await settle_call(ctx, cmd)


async def rows(ctx: BillingContext, sql: str, **params: object) -> list[tuple]:  # type: ignore[type-arg]
    async with ctx.uow() as uow:
        return [tuple(r) for r in (await uow.session.execute(text(sql), params)).all()]


@pytest.fixture
async def other_daemon(
    database_url: tuple[str, str | None], clock: FakeClock
) -> AsyncIterator[BillingContext]:
    """A second BillingContext with its own engine on the same ledger: another coobill."""
    url, pg_schema = database_url
    engine = pg_engine(url, pg_schema) if pg_schema else create_engine(url)
    context = bootstrap(settings_for(url), uow=UnitOfWorkFactory(engine, ledger_key=LEDGER_KEY),
                        clock=clock)
    try:
        yield context
    finally:
        await context.uow.dispose()
