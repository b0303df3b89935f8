"""`coobill extension ...`: an extension's settings, recharges, adjustments and listing, and
the PBX's phones added as extensions."""

from __future__ import annotations

import argparse
from decimal import Decimal
from typing import Any

from coobill.ami.session import pbx_endpoints
from coobill.cli.output import emit, to_json, to_table
from coobill.money import fmt, parse_amount
from coobill.services import balances, extension_listing, extensions
from coobill.services.context import BillingContext
from coobill.services.pbx_sync import add_phones

EXTENSION_COLUMNS = ("extension", "name", "billing", "payment", "credit_limit", "balance",
                     "total_recharged", "reserved", "locked")


def extension_row(view: extensions.ExtensionView) -> dict[str, Any]:
    return {c: getattr(view, c) for c in EXTENSION_COLUMNS}


async def extension_set(args: argparse.Namespace, ctx: BillingContext) -> int:
    changes = extensions.ExtensionChanges(
        name=args.name, billing=args.billing, payment=args.payment,
        credit_limit=None if args.credit is None else _amount(args.credit, "credit"),
        locked=args.locked, **{name: getattr(args, name) for name in extensions.CONTROLS},
    )
    view = await extensions.set_extension(ctx, args.extension, changes)
    _print_extension(view)
    return 0


def _controls_row(view: extensions.ExtensionView) -> dict[str, Any]:
    return {name: getattr(view, name) for name in extensions.CONTROLS}


def _print_extension(view: extensions.ExtensionView) -> None:
    """The extension's table; then its account controls', if it sets any."""
    print(to_table([extension_row(view)], EXTENSION_COLUMNS))
    controls = _controls_row(view)
    if any(v is not None for v in controls.values()):
        print(to_table([{k: "default" if v is None else v for k, v in controls.items()}],
                       tuple(controls)))


def _amount(text: str, field: str) -> Decimal:
    return parse_amount(text, field=field)


async def extension_recharge(args: argparse.Namespace, ctx: BillingContext) -> int:
    done = await balances.recharge(ctx, args.extensions, args.amount, who="cli")
    for record, number in zip(done, dict.fromkeys(args.extensions), strict=True):
        print(f"{number}: {fmt(record.balance_before)} + {fmt(record.amount)} = "
              f"{fmt(record.balance_after)}")
    return 0


async def extension_adjust(args: argparse.Namespace, ctx: BillingContext) -> int:
    view = await balances.adjust(ctx, args.extension, args.amount, who="cli", note=args.note)
    print(f"{view.extension}: balance {fmt(view.balance)}")
    return 0


async def extension_show(args: argparse.Namespace, ctx: BillingContext) -> int:
    view = await extensions.show_extension(ctx, args.extension)
    if args.json:
        # The controls' keys only when it sets one: what it printed before stays as it was.
        controls = _controls_row(view)
        if any(v is not None for v in controls.values()):
            controls["low_balance_since"] = view.low_balance_since
        else:
            controls = {}
        print(to_json({**extension_row(view), **controls}))
    else:
        _print_extension(view)
    return 0


async def extension_list(args: argparse.Namespace, ctx: BillingContext) -> int:
    views, _ = await extension_listing.list_extensions(
        ctx, locked=args.locked, payment=args.payment)
    emit(args, [extension_row(v) for v in views], EXTENSION_COLUMNS)
    return 0

async def extension_sync(args: argparse.Namespace, ctx: BillingContext) -> int:
    created = await add_phones(ctx, await pbx_endpoints(ctx.config.ami))
    print(f"{len(created)} new extension(s): {', '.join(created)}" if created
          else "no new extensions")
    return 0


HANDLERS = {
    "extension.set": extension_set,
    "extension.recharge": extension_recharge,
    "extension.adjust": extension_adjust,
    "extension.show": extension_show,
    "extension.list": extension_list,
    "extension.sync": extension_sync,
}
