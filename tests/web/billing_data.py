"""A small ledger for the portal's tests, made through the service layer (no SQL)."""

from __future__ import annotations

from datetime import datetime

from coobill.services import balances, extensions, rates
from coobill.services.commands import AuthorizeCall, Disposition, SettleCall
from coobill.services.context import BillingContext
from coobill.services.extensions import ExtensionChanges
from coobill.services.gate import authorize_call
from coobill.services.rate_fields import check_rate_fields
from coobill.services.settlement import settle_call

PASSWORD = "correct horse battery"


async def add_extension(ctx: BillingContext, number: str, name: str, **changes: object) -> None:
    await extensions.set_extension(
        ctx,
        number,
        ExtensionChanges(name=name, billing=True, **changes),  # type: ignore[arg-type]
    )


async def add_rate(
    ctx: BillingContext, prefix: str = "9", rate: str = "0.1", **fields: object
) -> int:
    values = {
        "prefix": prefix,
        "number_length": 0,
        "initial_cost": "0",
        "initial_seconds": 0,
        "rate": rate,
        "period_seconds": 60,
        "extensions": "*",
        **fields,
    }
    return (await rates.add_rate(ctx, check_rate_fields(**values))).id


async def place_call(
    ctx: BillingContext,
    uniqueid: str,
    extension: str,
    number: str,
    seconds: int,
    start: datetime,
    trunk: str = "trunk-a",
    name: str = "",
) -> None:
    """A call the gate allowed and settlement recorded (`name`: the caller ID's name)."""
    await authorize_call(
        ctx, AuthorizeCall(uniqueid, extension, number, channel=f"PJSIP/{extension}")
    )
    answer = start.replace(second=min(start.second + 5, 59))
    await settle_call(
        ctx,
        SettleCall(
            uniqueid=uniqueid,
            caller_extension=extension,
            caller_name=name,
            dialled_number=number,
            start=start,
            answer=answer,
            end=answer,
            billable_seconds=seconds,
            disposition=Disposition.ANSWERED,
            trunk=trunk,
        ),
    )


async def office(ctx: BillingContext) -> None:
    """Three extensions with money, a rate on prefix 9, and calls on two days."""
    await add_extension(ctx, "100", "Alice")
    await add_extension(ctx, "101", "Bob")
    await add_extension(ctx, "102", '=HYPERLINK("http://x")')
    await balances.recharge(ctx, ["100", "101", "102"], "50", who="setup")
    await add_rate(ctx)
    await place_call(ctx, "c1", "100", "9555", 90, datetime(2026, 11, 20, 10, 0, 0), name="Alice")
    await place_call(ctx, "c2", "101", "9666", 30, datetime(2026, 11, 21, 11, 0, 0), name="Bob")
    await place_call(ctx, "c3", "100", "9777", 3700, datetime(2026, 11, 21, 12, 0, 0), name="Alice")
