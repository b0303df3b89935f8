"""What each `coobill` command does: parse its arguments into a service call, print the
result - one module per noun (extension, rate, records, settings, user, reservations, ledger),
each with the HANDLERS of its actions; `dispatch` picks one."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable

from coobill.bootstrap import bootstrap
from coobill.cli import account
from coobill.cli.commands import (
    extension,
    holiday,
    ledger,
    rate,
    records,
    reservations,
    settings,
    user,
)
from coobill.config import Settings
from coobill.services.context import BillingContext
from coobill.services.ledger_seal import open_ledger
from coobill.storage import schema

__all__ = ["HANDLERS", "Handler", "dispatch"]

Handler = Callable[[argparse.Namespace, BillingContext], Awaitable[int]]

HANDLERS: dict[str, Handler] = {
    **ledger.HANDLERS,
    **extension.HANDLERS,
    **rate.HANDLERS,
    **holiday.HANDLERS,
    **records.HANDLERS,
    **settings.HANDLERS,
    **user.HANDLERS,
    **reservations.HANDLERS,
    **account.HANDLERS,
}


async def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    # `run` and `doctor` import what only they need: every other command starts without
    # loading the daemon (the gate, the AMI follower, the portal).
    if args.command == "run":
        from coobill.daemon import run_daemon

        return await run_daemon(settings, args.config)
    if args.command == "doctor":
        from coobill.doctor import run_doctor

        return await run_doctor(settings, args.config)
    ctx = bootstrap(settings)
    try:
        if args.command == "migrate":
            return await ledger.migrate(ctx)
        await schema.require_head(ctx.uow.engine)
        await open_ledger(ctx)
        key = args.command + ("." + args.action if getattr(args, "action", None) else "")
        return await HANDLERS[key](args, ctx)
    finally:
        await ctx.uow.dispose()
