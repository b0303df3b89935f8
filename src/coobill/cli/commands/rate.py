"""`coobill rate ...`: the rate table edited, imported, exported, and a call quoted."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from coobill.cli.output import emit, to_json, to_table
from coobill.errors import BadRequest
from coobill.formatting import duration
from coobill.money import fmt
from coobill.services import rate_decks, rates
from coobill.services.context import BillingContext
from coobill.services.rate_fields import (
    RATE_FIELD_NAMES,
    check_rate_fields,
    moment_text,
    public_values,
    service_arguments,
)

RATE_COLUMNS = ("id", *RATE_FIELD_NAMES)


def rate_row(view: rates.RateView) -> dict[str, Any]:
    row = public_values(view.fields)
    return {"id": view.id, **row, "extensions": ",".join(row["extensions"]),
            "days": row["days"] or "all", "valid_from": moment_text(row["valid_from"]),
            "valid_until": moment_text(row["valid_until"])}


def _rate_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The rate options given (each named as its field: --initial-time is initial_time)."""
    return service_arguments(
        {name: getattr(args, name) for name in RATE_FIELD_NAMES if name != "enabled"}
    )


async def rate_add(args: argparse.Namespace, ctx: BillingContext) -> int:
    view = await rates.add_rate(
        ctx, check_rate_fields(**_rate_changes(args), enabled=not args.disabled)
    )
    print(f"rate {view.id} added")
    return 0


async def rate_edit(args: argparse.Namespace, ctx: BillingContext) -> int:
    view = await rates.edit_rate(ctx, args.id, **_rate_changes(args), enabled=args.enabled)
    print(to_table([rate_row(view)], RATE_COLUMNS))
    return 0


async def rate_delete(args: argparse.Namespace, ctx: BillingContext) -> int:
    await rates.delete_rate(ctx, args.id)
    print(f"rate {args.id} deleted")
    return 0


async def rate_list(args: argparse.Namespace, ctx: BillingContext) -> int:
    emit(args, [rate_row(v) for v in await rates.list_rates(ctx)], RATE_COLUMNS)
    return 0


async def rate_import(args: argparse.Namespace, ctx: BillingContext) -> int:
    try:
        text = await asyncio.to_thread(Path(args.file).read_text, encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadRequest(f"file: cannot read {args.file}: {exc}", field="file") from None
    done = await rate_decks.import_rates(ctx, text, replace_all=args.replace,
                                         effective=args.effective, dry_run=args.dry_run,
                                         trunk=args.trunk)
    if args.dry_run:
        print("\n".join(rate_decks.diff_lines(done.diff)))
        print(f"dry run: nothing written ({done.count} rate(s) in the deck)")
    elif done.effective is not None:
        print(f"{done.count} rate(s) imported, in force from {moment_text(done.effective)}")
    else:
        print(f"{done.count} rate(s) imported")
    return 0


async def rate_export(args: argparse.Namespace, ctx: BillingContext) -> int:
    sys.stdout.write(rate_decks.rates_to_csv(await rates.list_rates(ctx)))
    return 0


async def rate_quote(args: argparse.Namespace, ctx: BillingContext) -> int:
    q = await rates.quote(ctx, args.extension, args.number, at=args.at, seconds=args.seconds)
    data = {
        "extension": q.extension,
        "number": q.number,
        "at": q.at.strftime("%H:%M"),
        "rate_id": q.rate.id if q.rate else None,
        "rate": None
        if q.rate is None
        else {
            "prefix": q.rate.prefix,
            "length": q.rate.number_length,
            "initial_cost": q.rate.tariff.initial_cost,
            "initial_time": q.rate.tariff.initial_seconds,
            "rate": q.rate.tariff.rate,
            "period": q.rate.tariff.period_seconds,
            "remark": q.rate.remark,
        },
        "seconds": q.seconds,
        "cost": q.cost,
        "funds": q.funds,
        "limit_seconds": q.limit_seconds,
    }
    if args.json:
        print(to_json(data))
    elif q.rate is None:
        print(f"no rate applies to {q.extension} -> {q.number} at {data['at']}")
    else:
        print(
            f"rate {q.rate.id} ({q.rate.prefix or 'any prefix'}"
            f"{', ' + q.rate.remark if q.rate.remark else ''}) at {data['at']}"
        )
        print(f"{q.seconds} s cost {fmt(q.cost)}")  # type: ignore[arg-type]
        print(f"funds {fmt(q.funds)} buy {q.limit_seconds} s ({duration(q.limit_seconds or 0)})")
    return 0


HANDLERS = {
    "rate.add": rate_add,
    "rate.edit": rate_edit,
    "rate.delete": rate_delete,
    "rate.list": rate_list,
    "rate.import": rate_import,
    "rate.export": rate_export,
    "rate.quote": rate_quote,
}
