"""`coobill settings ...`: the billing settings shown and changed."""

from __future__ import annotations

import argparse

from coobill.cli.output import to_json, to_table
from coobill.errors import BadRequest
from coobill.services import settings as settings_service
from coobill.services.context import BillingContext


async def settings_set(args: argparse.Namespace, ctx: BillingContext) -> int:
    if all(v is None for v in (args.billing, args.currency, args.symbol, args.timezone)):
        raise BadRequest(
            "settings set: give at least one of --billing, --currency, --symbol, --timezone"
        )
    current = await settings_service.change_settings(
        ctx,
        billing=args.billing,
        currency=args.currency,
        symbol=args.symbol,
        timezone=args.timezone,
    )
    print(to_table([current.as_dict()], tuple(current.as_dict())))
    return 0


async def settings_show(args: argparse.Namespace, ctx: BillingContext) -> int:
    current = (await settings_service.billing_settings(ctx)).as_dict()
    print(to_json(current) if args.json else to_table([current], tuple(current)))
    return 0


HANDLERS = {
    "settings.set": settings_set,
    "settings.show": settings_show,
}
