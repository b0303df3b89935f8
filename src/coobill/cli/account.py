"""The account controls' commands: `coobill webhooks`, `coobill fee`, `coobill statement`.
Each is one service call, as every command is (cli/commands/)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from coobill.cli.output import to_json, to_table
from coobill.config import shown_url
from coobill.errors import BadRequest
from coobill.money import fmt
from coobill.services import fees, outbox, statement_render, statements
from coobill.services.context import BillingContext

Handler = Callable[[argparse.Namespace, BillingContext], Awaitable[int]]

WEBHOOK_COLUMNS = ("id", "kind", "extension", "created_at", "state", "attempts",
                   "next_attempt_at", "last_error")


def add_parsers(sub: Any, record_id: Callable[[str], int]) -> None:
    """The account controls' subcommands, on the `coobill` parser's subparsers."""
    hooks = sub.add_parser("webhooks", help="the webhook outbox: events and their delivery")
    actions = hooks.add_subparsers(dest="action", required=True)
    p = actions.add_parser("list", help="events, newest first, with their delivery state")
    p.add_argument("--state", choices=outbox.STATES)
    p.add_argument("--extension", metavar="EXT")
    p.add_argument("--limit", type=record_id, default=100)
    p.add_argument("--json", action="store_true", help="print JSON")
    p = actions.add_parser("retry", help="send events again now (default: every failed one)")
    p.add_argument("ids", nargs="*", type=record_id, metavar="ID")

    fee = sub.add_parser("fee", help="recurring fees").add_subparsers(dest="action", required=True)
    p = fee.add_parser("add", help="a monthly or weekly fee for EXT, or * for every billed one")
    p.add_argument("extension", metavar="EXT")
    p.add_argument("--amount", required=True)
    p.add_argument("--period", choices=fees.PERIODS, default=fees.MONTHLY)
    p.add_argument("--over-credit", choices=fees.OVER_CREDIT, default=fees.LOCK,
                   help="when a charge takes the funds below zero: lock the extension, or flag it")
    p.add_argument("--name", default="")
    p.add_argument("--starts", metavar="DATE", help="first day charged for, YYYY-MM-DD (today)")
    p = fee.add_parser("list", help="the fees")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = fee.add_parser("remove", help="stop a fee (its charges stay)")
    p.add_argument("id", type=record_id)
    fee.add_parser("charge", help="charge the fees due now (the daemon does it on its own)")

    p = sub.add_parser("statement", help="an extension's statement of a month (HTML on stdout)")
    p.add_argument("extension", metavar="EXT")
    p.add_argument("--month", required=True, metavar="YYYY-MM")
    p.add_argument("--lang", choices=statement_render.LANGUAGES, default="en")
    p.add_argument("--pdf", metavar="FILE", help="write it as PDF to FILE")
    p.add_argument("--html", metavar="FILE", help="write the HTML to FILE instead of stdout")
    p = sub.add_parser("statements", help="the statements of every billed extension of a month")
    p.add_argument("--month", required=True, metavar="YYYY-MM")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write them in")
    p.add_argument("--lang", choices=statement_render.LANGUAGES, default="en")
    p.add_argument("--pdf", action="store_true", help="a PDF beside each HTML file")


def _event_row(event: outbox.EventView) -> dict[str, Any]:
    return {"id": event.id, "key": event.key, "kind": event.kind, "extension": event.extension,
            "created_at": event.created_at, "state": event.state, "attempts": event.attempts,
            "next_attempt_at": event.next_attempt_at, "delivered_at": event.delivered_at,
            "delivered_to": [shown_url(u) for u in event.delivered_to],
            "last_error": event.last_error}


async def webhooks_list(args: argparse.Namespace, ctx: BillingContext) -> int:
    found = await outbox.list_events(ctx, state=args.state, extension=args.extension,
                                     limit=args.limit)
    rows = [_event_row(e) for e in found]
    print(to_json(rows) if args.json else to_table(rows, WEBHOOK_COLUMNS))
    return 0


async def webhooks_retry(args: argparse.Namespace, ctx: BillingContext) -> int:
    moved = await outbox.retry(ctx, args.ids or None)
    print(f"{len(moved)} event(s) to send again: {', '.join(map(str, moved))}" if moved
          else "no failed events")
    return 0


FEE_COLUMNS = ("id", "extension", "name", "amount", "period", "over_credit", "starts")


def _fee_row(view: fees.FeeView) -> dict[str, Any]:
    return {c: getattr(view, c) for c in FEE_COLUMNS}


async def fee_add(args: argparse.Namespace, ctx: BillingContext) -> int:
    view = await fees.add_fee(ctx, args.extension, args.amount, period=args.period,
                              over_credit=args.over_credit, name=args.name, starts=args.starts)
    print(f"fee {view.id} added: {fmt(view.amount)} {view.period} for {view.extension}")
    return 0


async def fee_list(args: argparse.Namespace, ctx: BillingContext) -> int:
    rows = [_fee_row(v) for v in await fees.list_fees(ctx)]
    print(to_json(rows) if args.json else to_table(rows, FEE_COLUMNS))
    return 0


async def fee_remove(args: argparse.Namespace, ctx: BillingContext) -> int:
    view = await fees.remove_fee(ctx, args.id)
    print(f"fee {view.id} removed")
    return 0


async def fee_charge(args: argparse.Namespace, ctx: BillingContext) -> int:
    for c in await fees.charge_due(ctx):
        print(f"{c.extension}: fee {c.fee_id} for {c.period} {fmt(c.amount)}, balance "
              f"{fmt(c.balance_after)}{' (over credit)' if c.over_credit else ''}")
    return 0


def _write(files: list[tuple[str, str | bytes]]) -> None:
    for path, data in files:
        if isinstance(data, bytes):
            Path(path).write_bytes(data)
        else:
            Path(path).write_text(data, encoding="utf-8")


async def statement(args: argparse.Namespace, ctx: BillingContext) -> int:
    st = await statements.statement(ctx, args.extension, args.month)
    files: list[tuple[str, str | bytes]] = []
    if args.pdf:
        files.append((args.pdf, statement_render.to_pdf(st, args.lang)))
    if args.html:
        files.append((args.html, statement_render.to_html(st, args.lang)))
    if not files:
        sys.stdout.write(statement_render.to_html(st, args.lang))
    await asyncio.to_thread(_write, files)
    return 0


async def statements_batch(args: argparse.Namespace, ctx: BillingContext) -> int:
    folder = Path(args.out)
    if not await asyncio.to_thread(folder.is_dir):
        raise BadRequest(f"out: {folder} is not a folder", field="out")
    batch = await statements.statements_of_month(ctx, args.month)
    for st in batch:
        # Not Path.with_suffix: an extension number may hold a dot.
        stem = str(folder / f"statement-{st.extension}-{st.month}")
        files: list[tuple[str, str | bytes]] = [
            (stem + ".html", statement_render.to_html(st, args.lang))]
        if args.pdf:
            files.append((stem + ".pdf", statement_render.to_pdf(st, args.lang)))
        await asyncio.to_thread(_write, files)
        print(f"{st.extension}: {stem}.html{' and .pdf' if args.pdf else ''}")
    print(f"{len(batch)} statement(s) for {args.month}")
    return 0


HANDLERS: dict[str, Handler] = {
    "statement": statement,
    "statements": statements_batch,
    "fee.add": fee_add,
    "fee.list": fee_list,
    "fee.remove": fee_remove,
    "fee.charge": fee_charge,
    "webhooks.list": webhooks_list,
    "webhooks.retry": webhooks_retry,
}
