"""`coobill reservations ...`: the holds listed, and one released or charged by hand."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from coobill.cli.output import to_json, to_table
from coobill.money import fmt
from coobill.services import reservations
from coobill.services.context import BillingContext

HOLD_COLUMNS = ("id", "uniqueid", "extension", "number", "amount", "limit_seconds", "state",
                "since", "note")


async def reservations_list(args: argparse.Namespace, ctx: BillingContext) -> int:
    held = await reservations.list_held(ctx, state="flagged" if args.flagged else None)
    rows = [asdict(h) for h in held]
    if args.json:
        print(to_json(rows))
    else:
        print(to_table(rows, HOLD_COLUMNS))
    return 0


async def reservations_release(args: argparse.Namespace, ctx: BillingContext) -> int:
    await reservations.release(ctx, args.uniqueid, hold_id=args.hold, by="cli")
    print(f"released the hold of call {args.uniqueid}")
    return 0


async def reservations_charge(args: argparse.Namespace, ctx: BillingContext) -> int:
    result = await reservations.charge(ctx, args.uniqueid, args.seconds, hold_id=args.hold)
    print(f"call {args.uniqueid} charged {fmt(result.cost)}")
    return 0


HANDLERS = {
    "reservations.list": reservations_list,
    "reservations.release": reservations_release,
    "reservations.charge": reservations_charge,
}
