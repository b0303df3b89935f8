"""What each `coobill` command does: parse its arguments into a service call, print the result."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from coobill.bootstrap import bootstrap
from coobill.cli import account
from coobill.cli.output import to_csv, to_json, to_table
from coobill.config import Settings
from coobill.errors import BadRequest
from coobill.formatting import duration
from coobill.money import fmt
from coobill.services import audit as audit_service
from coobill.services import extensions, rates, refused, reports, reservations, users
from coobill.services import settings as settings_service
from coobill.services.context import BillingContext
from coobill.services.ledger_seal import (
    UNSEALED_REVISIONS,
    open_ledger,
    seal_entries_from_before_the_seal,
)
from coobill.services.rate_fields import (
    RATE_FIELD_NAMES,
    check_rate_fields,
    public_values,
    service_arguments,
)
from coobill.storage import schema

EXTENSION_COLUMNS = ("extension", "name", "billing", "payment", "credit_limit", "balance",
                     "total_recharged", "reserved", "locked")
RATE_COLUMNS = ("id", *RATE_FIELD_NAMES)
RECHARGE_COLUMNS = ("time", "extension", "name", "balance_before", "amount", "balance_after", "who")
CALL_COLUMNS = ("start", "extension", "name", "number", "billable_time", "billsec", "trunk", "rate",
                "cost", "disposition", "gated", "uniqueid")
REFUSED_COLUMNS = ("time", "extension", "number", "reason", "latency_ms", "uniqueid")
STATS_COLUMNS = ("date", "extension", "calls", "answered", "total_duration", "total_seconds",
                 "average_duration", "average_seconds", "total_cost")

Handler = Callable[[argparse.Namespace, BillingContext], Awaitable[int]]


def emit(args: argparse.Namespace, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    if getattr(args, "json", False):
        print(to_json(rows))
    elif getattr(args, "csv", False):
        sys.stdout.write(to_csv(rows, columns))
    else:
        print(to_table(rows, columns))


def extension_row(view: extensions.ExtensionView) -> dict[str, Any]:
    return {c: getattr(view, c) for c in EXTENSION_COLUMNS}


def rate_row(view: rates.RateView) -> dict[str, Any]:
    row = public_values(view.fields)
    return {"id": view.id, **row, "extensions": ",".join(row["extensions"])}


async def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "run":
        from coobill.daemon import run_daemon

        return await run_daemon(settings, args.config)
    if args.command == "doctor":
        from coobill.doctor import run_doctor

        return await run_doctor(settings, args.config)
    ctx = bootstrap(settings)
    try:
        if args.command == "migrate":
            before = await schema.current_revision(ctx.uow.engine)
            await schema.upgrade(ctx.uow.engine)
            if before in UNSEALED_REVISIONS:
                sealed = await seal_entries_from_before_the_seal(ctx)
                print(f"{sealed} ledger entries from before the seal sealed with the key")
            await open_ledger(ctx)
            print(f"database at {await schema.current_revision(ctx.uow.engine)} (head)")
            return 0
        await schema.require_head(ctx.uow.engine)
        await open_ledger(ctx)
        key = args.command + ("." + args.action if getattr(args, "action", None) else "")
        return await HANDLERS[key](args, ctx)
    finally:
        await ctx.uow.dispose()


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


def _amount(text: str, field: str):  # type: ignore[no-untyped-def]
    from coobill.money import parse_amount

    return parse_amount(text, field=field)


async def extension_recharge(args: argparse.Namespace, ctx: BillingContext) -> int:
    done = await extensions.recharge(ctx, args.extensions, args.amount, who="cli")
    for record, number in zip(done, dict.fromkeys(args.extensions), strict=True):
        print(f"{number}: {fmt(record.balance_before)} + {fmt(record.amount)} = "
              f"{fmt(record.balance_after)}")
    return 0


async def extension_adjust(args: argparse.Namespace, ctx: BillingContext) -> int:
    view = await extensions.adjust(ctx, args.extension, args.amount, who="cli", note=args.note)
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
    views, _ = await extensions.list_extensions(ctx, locked=args.locked, payment=args.payment)
    emit(args, [extension_row(v) for v in views], EXTENSION_COLUMNS)
    return 0


async def extension_sync(args: argparse.Namespace, ctx: BillingContext) -> int:
    from coobill.ami.session import pbx_endpoints
    from coobill.services.pbx_sync import add_phones

    created = await add_phones(ctx, await pbx_endpoints(ctx.config.ami))
    print(f"{len(created)} new extension(s): {', '.join(created)}" if created
          else "no new extensions")
    return 0


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
    count = await rates.import_rates(ctx, text, replace=args.replace)
    print(f"{count} rate(s) imported")
    return 0


async def rate_export(args: argparse.Namespace, ctx: BillingContext) -> int:
    sys.stdout.write(rates.rates_to_csv(await rates.list_rates(ctx)))
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


async def recharges_list(args: argparse.Namespace, ctx: BillingContext) -> int:
    period = reports.Period.parse(args.date_from, args.date_to)
    records, _ = await reports.list_recharges(ctx, period, args.keyword)
    emit(
        args,
        [
            {
                "time": r.time,
                "extension": r.extension,
                "name": r.name,
                "balance_before": r.balance_before,
                "amount": r.amount,
                "balance_after": r.balance_after,
                "who": r.who,
            }
            for r in records
        ],
        RECHARGE_COLUMNS,
    )
    return 0


async def calls_list(args: argparse.Namespace, ctx: BillingContext) -> int:
    period = reports.Period.parse(args.date_from, args.date_to)
    if args.outcome == "refused":
        refusals, _ = await refused.list_refused(ctx, *period.bounds(), args.keyword)
        emit(args, [{"time": r.at, "extension": r.extension, "number": r.number,
                     "reason": r.reason, "latency_ms": r.latency_ms, "uniqueid": r.uniqueid}
                    for r in refusals], REFUSED_COLUMNS)
        return 0
    records, _ = await reports.list_calls(ctx, period, args.keyword, outcome=args.outcome or "")
    emit(args, [{"start": c.start, "extension": c.extension, "name": c.name, "number": c.number,
                 "billable_time": duration(c.billable_seconds), "billsec": c.billable_seconds,
                 "trunk": c.trunk, "rate": c.rate, "cost": c.cost, "disposition": c.disposition,
                 "gated": c.gated, "uniqueid": c.uniqueid} for c in records], CALL_COLUMNS)
    return 0


async def stats(args: argparse.Namespace, ctx: BillingContext) -> int:
    period = reports.Period.parse(args.date_from, args.date_to)
    rows = await reports.statistics(
        ctx, args.by, period, args.extensions, per_extension=args.per_extension
    )
    emit(
        args,
        [
            {
                "date": r.period,
                "extension": "All" if r.extension == reports.ALL_EXTENSIONS else r.extension,
                "calls": r.calls,
                "answered": r.answered,
                "total_duration": duration(r.total_seconds),
                "total_seconds": r.total_seconds,
                "average_duration": duration(r.average_seconds),
                "average_seconds": r.average_seconds,
                "total_cost": r.cost,
            }
            for r in rows
        ],
        STATS_COLUMNS,
    )
    return 0


async def settings_set(args: argparse.Namespace, ctx: BillingContext) -> int:
    controls = {name: getattr(args, name) for name in settings_service.CONTROL_DEFAULTS}
    if all(v is None for v in (args.billing, args.currency, args.symbol, args.timezone,
                               *controls.values())):
        raise BadRequest("settings set: give at least one of --billing, --currency, --symbol, "
                         "--timezone, --cap-daily, --cap-monthly, --max-call-cost, "
                         "--max-price-minute, --low-balance")
    current = await settings_service.change_settings(
        ctx, billing=args.billing, currency=args.currency, symbol=args.symbol,
        timezone=args.timezone, controls=controls,
    )
    _print_settings(current)
    return 0


def _print_settings(current: settings_service.BillingSettings) -> None:
    """The settings' table; then the account controls' defaults, if any is set."""
    print(to_table([current.as_dict()], tuple(current.as_dict())))
    controls = current.controls()
    if any(controls.values()):
        print(to_table([{k: v or "none" for k, v in controls.items()}], tuple(controls)))


async def settings_show(args: argparse.Namespace, ctx: BillingContext) -> int:
    current = await settings_service.billing_settings(ctx)
    if args.json:
        controls = current.controls()
        print(to_json({**current.as_dict(), **(controls if any(controls.values()) else {})}))
    else:
        _print_settings(current)
    return 0


async def audit(args: argparse.Namespace, ctx: BillingContext) -> int:
    report = await audit_service.audit(ctx)
    for problem in report.problems:
        print(f"coobill: audit: {problem}", file=sys.stderr)
    if not report.ok:
        return 1
    print(f"audit ok: {report.extensions} extension(s), {report.entries} ledger entries")
    return 0


def _password(args: argparse.Namespace) -> str:
    """--password, else a prompt on a terminal, else the first line of stdin."""
    if args.password is not None:
        return str(args.password)
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass("password: ")
    return sys.stdin.readline().rstrip("\n")


async def user_add(args: argparse.Namespace, ctx: BillingContext) -> int:
    user = await users.add_user(ctx, args.name, _password(args), args.role)
    print(f"user {user.name} ({user.role}) added")
    return 0


async def user_list(args: argparse.Namespace, ctx: BillingContext) -> int:
    rows = [
        {"name": u.name, "role": u.role, "language": u.language}
        for u in await users.list_users(ctx)
    ]
    columns = ("name", "role", "language")
    if args.csv:
        sys.stdout.write(to_csv(rows, columns))
    else:
        print(to_json(rows) if args.json else to_table(rows, columns))
    return 0


async def user_passwd(args: argparse.Namespace, ctx: BillingContext) -> int:
    user = await users.set_password(ctx, args.name, _password(args))
    print(f"password of user {user.name} set")
    return 0


async def user_remove(args: argparse.Namespace, ctx: BillingContext) -> int:
    user = await users.remove_user(ctx, args.name)
    print(f"user {user.name} ({user.role}) removed")
    return 0


async def reservations_list(args: argparse.Namespace, ctx: BillingContext) -> int:
    held = await reservations.list_held(ctx, state="flagged" if args.flagged else None)
    rows = [asdict(h) for h in held]
    if args.json:
        print(to_json(rows))
    else:
        print(
            to_table(
                rows,
                (
                    "id",
                    "uniqueid",
                    "extension",
                    "number",
                    "amount",
                    "limit_seconds",
                    "state",
                    "since",
                    "note",
                ),
            )
        )
    return 0


async def reservations_release(args: argparse.Namespace, ctx: BillingContext) -> int:
    await reservations.release(ctx, args.uniqueid, hold_id=args.hold, by="cli")
    print(f"released the hold of call {args.uniqueid}")
    return 0


async def reservations_charge(args: argparse.Namespace, ctx: BillingContext) -> int:
    result = await reservations.charge(ctx, args.uniqueid, args.seconds, hold_id=args.hold)
    print(f"call {args.uniqueid} charged {fmt(result.cost)}")
    return 0


HANDLERS: dict[str, Handler] = {
    "audit": audit,
    "extension.set": extension_set,
    "extension.recharge": extension_recharge,
    "extension.adjust": extension_adjust,
    "extension.show": extension_show,
    "extension.list": extension_list,
    "extension.sync": extension_sync,
    "rate.add": rate_add,
    "rate.edit": rate_edit,
    "rate.delete": rate_delete,
    "rate.list": rate_list,
    "rate.import": rate_import,
    "rate.export": rate_export,
    "rate.quote": rate_quote,
    "recharges.list": recharges_list,
    "calls.list": calls_list,
    "stats": stats,
    "settings.set": settings_set,
    "settings.show": settings_show,
    "user.add": user_add,
    "user.list": user_list,
    "user.passwd": user_passwd,
    "user.remove": user_remove,
    "reservations.list": reservations_list,
    "reservations.release": reservations_release,
    "reservations.charge": reservations_charge,
    **account.HANDLERS,
}
