"""`coobill holiday ...`: the holiday calendar that rates apply on or exclude."""

from __future__ import annotations

import argparse

from coobill.cli.output import emit
from coobill.services import holidays
from coobill.services.context import BillingContext

HOLIDAY_COLUMNS = ("id", "day", "yearly", "name")


async def holiday_add(args: argparse.Namespace, ctx: BillingContext) -> int:
    view = await holidays.add_holiday(ctx, args.day, yearly=args.yearly, name=args.name)
    print(f"holiday {view.id} added: {view.when}{' ' + view.name if view.name else ''}")
    return 0


async def holiday_list(args: argparse.Namespace, ctx: BillingContext) -> int:
    rows = [{"id": v.id, "day": v.when, "yearly": v.yearly, "name": v.name}
            for v in await holidays.list_holidays(ctx)]
    emit(args, rows, HOLIDAY_COLUMNS)
    return 0


async def holiday_remove(args: argparse.Namespace, ctx: BillingContext) -> int:
    removed = await holidays.remove_holiday(ctx, day=args.day)
    print(f"{removed} holiday(s) removed")
    return 0


HANDLERS = {
    "holiday.add": holiday_add,
    "holiday.list": holiday_list,
    "holiday.remove": holiday_remove,
}
