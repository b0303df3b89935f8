"""`coobill settings ...`: the billing settings shown and changed."""

from __future__ import annotations

import argparse

from coobill.cli.output import to_json, to_table
from coobill.errors import BadRequest
from coobill.services import settings as settings_service
from coobill.services.context import BillingContext


async def settings_set(args: argparse.Namespace, ctx: BillingContext) -> int:
    controls = {name: getattr(args, name) for name in settings_service.CONTROL_DEFAULTS}
    if all(v is None for v in (args.billing, args.currency, args.symbol, args.timezone,
                               args.min_margin, *controls.values())):
        raise BadRequest("settings set: give at least one of --billing, --currency, --symbol, "
                         "--timezone, --cap-daily, --cap-monthly, --max-call-cost, "
                         "--max-price-minute, --low-balance, --min-margin")
    current = await settings_service.change_settings(
        ctx, billing=args.billing, currency=args.currency, symbol=args.symbol,
        timezone=args.timezone, controls=controls, min_margin=args.min_margin,
    )
    _print_settings(current)
    return 0


def _print_settings(current: settings_service.BillingSettings) -> None:
    """The settings' table; then the account controls' defaults, if any is set, and the
    minimum margin, if set."""
    print(to_table([current.as_dict()], tuple(current.as_dict())))
    controls = current.controls()
    if any(controls.values()):
        print(to_table([{k: v or "none" for k, v in controls.items()}], tuple(controls)))
    if current.min_margin is not None:
        print(to_table([{"min_margin": str(current.min_margin)}], ("min_margin",)))


async def settings_show(args: argparse.Namespace, ctx: BillingContext) -> int:
    current = await settings_service.billing_settings(ctx)
    if args.json:
        controls = current.controls()
        margin = {} if current.min_margin is None else {"min_margin": str(current.min_margin)}
        print(to_json({**current.as_dict(), **(controls if any(controls.values()) else {}),
                       **margin}))
    else:
        _print_settings(current)
    return 0


HANDLERS = {
    "settings.set": settings_set,
    "settings.show": settings_show,
}
