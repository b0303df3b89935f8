"""The account controls' commands: `coobill webhooks`, `coobill fee`, `coobill statement`.
Each is one service call, as every command is (cli/commands.py)."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

from coobill.cli.output import to_json, to_table
from coobill.services import outbox
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


def _event_row(event: outbox.EventView) -> dict[str, Any]:
    return {"id": event.id, "key": event.key, "kind": event.kind, "extension": event.extension,
            "created_at": event.created_at, "state": event.state, "attempts": event.attempts,
            "next_attempt_at": event.next_attempt_at, "delivered_at": event.delivered_at,
            "delivered_to": list(event.delivered_to), "last_error": event.last_error}


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


HANDLERS: dict[str, Handler] = {
    "webhooks.list": webhooks_list,
    "webhooks.retry": webhooks_retry,
}
