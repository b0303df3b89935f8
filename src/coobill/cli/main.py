"""`coobill`: every billing operation from the appliance's shell.

A bad argument prints one line on stderr and exits non-zero; nothing is half-written, since
each command is one service call and each service call is one transaction.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from coobill.cli import account, commands
from coobill.config import load_settings
from coobill.errors import BadRequest, CoobillError
from coobill.services import bounds


def _bounded(minimum: int, maximum: int) -> Callable[[str], int]:
    """An argparse type: ASCII digits within [minimum, maximum] (int() would take '８８' and
    a 20-digit number the database cannot hold)."""

    def parse(text: str) -> int:
        try:
            return bounds.whole_number(text, "value", minimum=minimum, maximum=maximum)
        except BadRequest as exc:
            raise argparse.ArgumentTypeError(exc.message.removeprefix("value: ")) from None

    parse.__name__ = "whole number"  # argparse names the type in its message
    return parse


RECORD_ID = _bounded(1, bounds.MAX_ID)
SECONDS = _bounded(0, 86_400)


class Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _add_report_filters(p: argparse.ArgumentParser, *, csv: bool = True) -> None:
    p.add_argument("--from", dest="date_from", metavar="DATE", help="first day, YYYY-MM-DD")
    p.add_argument("--to", dest="date_to", metavar="DATE", help="last day, YYYY-MM-DD")
    p.add_argument("--keyword", help="part of an extension number or name")
    _add_formats(p, csv=csv)


# The account controls' options (docs/controls.md): option, the service's name, what it is.
CONTROL_OPTIONS = (
    ("--cap-daily", "cap_daily", "most its calls may spend in a day"),
    ("--cap-monthly", "cap_monthly", "most its calls may spend in a month"),
    ("--max-call-cost", "max_call_cost", "most one call may cost"),
    ("--max-price-minute", "max_price_minute", "dearest price per minute it may call at"),
    ("--low-balance", "low_balance", "funds below which it is low on balance"),
)


def _add_control_options(p: argparse.ArgumentParser, none: str) -> None:
    for option, dest, text in CONTROL_OPTIONS:
        p.add_argument(option, dest=dest, metavar="AMOUNT", help=f"{text} ({none})")


def _add_formats(p: argparse.ArgumentParser, *, csv: bool = False) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true", help="print JSON")
    if csv:
        group.add_argument("--csv", action="store_true", help="print CSV")


def _add_rate_options(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument("--prefix", required=required, help="dialled prefix, digits (may be empty)")
    p.add_argument("--length", required=required, help="number length incl. prefix, 0 = any")
    p.add_argument("--initial-cost", required=required, help="cost of the initial time")
    p.add_argument("--initial-time", required=required, help="seconds the initial cost covers")
    p.add_argument("--rate", required=required, help="cost of each started billing period")
    p.add_argument("--period", required=required, help="billing period in seconds")
    p.add_argument("--start", required=False, help="window start HH:MM (default 00:00)")
    p.add_argument("--end", required=False, help="window end HH:MM, included (default 23:59)")
    # not required with --trunk (a buy rate is for every extension): the service says so
    p.add_argument("--extensions", help="100,101,... or * for every one")
    p.add_argument("--trunk", help="a buy rate: what the carrier on this trunk charges "
                                   "(its endpoint name, * for every trunk)")
    p.add_argument("--remark", help="free text to tell rates apart")
    p.add_argument("--days",
                   help="days it applies on: mon,tue,wed,thu,fri,sat,sun (default every day)")
    p.add_argument("--holidays", choices=("any", "only", "except"),
                   help="only on the holiday calendar's dates, or except on them (default any)")
    p.add_argument("--valid-from", metavar="MOMENT",
                   help='in force from "YYYY-MM-DD HH:MM" (PBX time)')
    p.add_argument("--valid-until", metavar="MOMENT",
                   help='in force until "YYYY-MM-DD HH:MM", excluded ("" for no end)')
    p.add_argument("--split", action=argparse.BooleanOptionalAction, default=None,
                   help="charge each billing period at the rate in force when it starts")


def build_parser() -> argparse.ArgumentParser:  # noqa: PLR0915 - the parser: one statement an option
    parser = Parser(prog="coobill", description=__doc__.splitlines()[0])
    parser.add_argument("--config", metavar="PATH", help="configuration file (TOML)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("migrate", help="upgrade the database to the current schema")
    sub.add_parser("run", help="run the daemon (gate, settlement, portal)")
    sub.add_parser("audit", help="verify every balance against its ledger")
    sub.add_parser("doctor", help="check configuration, schema, AMI and ports; say what to fix")

    ext = sub.add_parser("extension", help="extensions").add_subparsers(
        dest="action", required=True
    )
    p = ext.add_parser("set", help="create or update an extension")
    p.add_argument("extension")
    p.add_argument("--name")
    p.add_argument("--billing", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--payment", choices=("prepaid", "postpaid"))
    p.add_argument("--credit", metavar="AMOUNT", help="credit limit")
    lock = p.add_mutually_exclusive_group()
    lock.add_argument("--lock", dest="locked", action="store_const", const=True, default=None)
    lock.add_argument("--unlock", dest="locked", action="store_const", const=False)
    _add_control_options(p, "none: the site's default")
    p = ext.add_parser("recharge", help="recharge one or more extensions by the same amount")
    p.add_argument("extensions", nargs="+", metavar="EXT")
    p.add_argument("--amount", required=True)
    p = ext.add_parser("adjust", help="correct a balance by a signed amount")
    p.add_argument("extension")
    p.add_argument("--amount", required=True)
    p.add_argument("--note", default="")
    p = ext.add_parser("show", help="one extension")
    p.add_argument("extension")
    _add_formats(p)
    p = ext.add_parser("list", help="extensions")
    state = p.add_mutually_exclusive_group()
    state.add_argument("--locked", dest="locked", action="store_const", const=True, default=None)
    state.add_argument("--unlocked", dest="locked", action="store_const", const=False)
    p.add_argument("--payment", choices=("prepaid", "postpaid"))
    _add_formats(p, csv=True)
    ext.add_parser("sync", help="give the PBX's endpoints billing rows (billing off)")

    rate = sub.add_parser("rate", help="rates").add_subparsers(dest="action", required=True)
    p = rate.add_parser("add", help="add a rate")
    _add_rate_options(p, required=True)
    p.add_argument("--disabled", action="store_true")
    p = rate.add_parser("edit", help="change some fields of a rate")
    p.add_argument("id", type=RECORD_ID)
    _add_rate_options(p, required=False)
    on = p.add_mutually_exclusive_group()
    on.add_argument("--enable", dest="enabled", action="store_const", const=True, default=None)
    on.add_argument("--disable", dest="enabled", action="store_const", const=False)
    p = rate.add_parser("delete", help="delete a rate")
    p.add_argument("id", type=RECORD_ID)
    p = rate.add_parser("list", help="rates")
    _add_formats(p, csv=True)
    p = rate.add_parser("import", help="add the rates of a CSV deck (all or nothing)")
    p.add_argument("file")
    p.add_argument("--replace", action="store_true", help="replace every existing rate")
    p.add_argument("--from", dest="effective", metavar="MOMENT",
                   help='take effect at "YYYY-MM-DD HH:MM" (PBX time); the deck in force '
                        "stays in force until then")
    p.add_argument("--trunk", help="the deck is this trunk's buy rates (replacing only them)")
    p.add_argument("--dry-run", action="store_true",
                   help="print what would change (added, removed, changed) and write nothing")
    rate.add_parser("export", help="print every rate as a CSV deck")
    p = rate.add_parser("quote", help="the rate, cost and time limit for a call")
    p.add_argument("extension")
    p.add_argument("number")
    p.add_argument("--at", metavar="MOMENT", help='HH:MM today, or "YYYY-MM-DD HH:MM"')
    p.add_argument("--seconds", type=SECONDS, default=60)
    _add_formats(p)

    holiday = sub.add_parser("holiday", help="the holiday calendar").add_subparsers(
        dest="action", required=True)
    p = holiday.add_parser("add", help="add a date to the holiday calendar")
    p.add_argument("day", metavar="DATE", help="YYYY-MM-DD")
    p.add_argument("--yearly", action="store_true", help="every year on this month and day")
    p.add_argument("--name", default="")
    p = holiday.add_parser("list", help="the holiday calendar")
    _add_formats(p, csv=True)
    p = holiday.add_parser("remove", help="remove the holidays on a date")
    p.add_argument("day", metavar="DATE", help="YYYY-MM-DD")

    records = sub.add_parser("recharges", help="recharge records")
    _add_report_filters(records.add_subparsers(dest="action", required=True).add_parser("list"))
    records = sub.add_parser("calls", help="call records")
    p = records.add_subparsers(dest="action", required=True).add_parser("list")
    _add_report_filters(p)
    p.add_argument("--outcome", choices=("answered", "unanswered", "refused"),
                   help="only these calls; refused: the calls the gate refused (every DENY)")

    p = sub.add_parser("stats", help="calls, duration and cost by day, month or year")
    p.add_argument("--by", choices=("day", "month", "year", "trunk"), default="day",
                   help="trunk: revenue, buy cost and margin per trunk")
    p.add_argument("--from", dest="date_from", metavar="DATE")
    p.add_argument("--to", dest="date_to", metavar="DATE")
    p.add_argument(
        "--extension",
        dest="extensions",
        nargs="+",
        default=[],
        metavar="EXT",
        help="count only these extensions",
    )
    p.add_argument(
        "--per-extension",
        action="store_true",
        help="one row per period and extension (default: one row per period, All)",
    )
    _add_formats(p, csv=True)

    st = sub.add_parser("settings", help="billing settings").add_subparsers(
        dest="action", required=True
    )
    p = st.add_parser("set")
    p.add_argument("--billing", choices=("on", "off"))
    p.add_argument("--currency", help="USD, CNY, EUR, GBP, VND or other (with --symbol)")
    p.add_argument("--symbol", help="the currency's symbol")
    p.add_argument("--timezone", help="the PBX's time zone, e.g. Asia/Shanghai")
    _add_control_options(p, "for every extension that sets none; none: no default")
    p.add_argument("--min-margin", dest="min_margin", metavar="AMOUNT",
                   help="least a call's first minute must sell above its trunk's buy price "
                        "(DENY no_margin); none: billing.min_margin of the configuration")
    p = st.add_parser("show")
    _add_formats(p)

    us = sub.add_parser("user", help="portal users").add_subparsers(dest="action", required=True)
    p = us.add_parser("add")
    p.add_argument("name")
    p.add_argument("--role", choices=("billing", "admin"), required=True)
    p.add_argument("--password", help="the password (else read from stdin)")
    p = us.add_parser("list")
    _add_formats(p, csv=True)
    p = us.add_parser("passwd", help="set a user's password")
    p.add_argument("name")
    p.add_argument("--password", help="the new password (else read from stdin)")
    p = us.add_parser("remove")
    p.add_argument("name")

    rs = sub.add_parser("reservations", help="funds held by live calls").add_subparsers(
        dest="action", required=True
    )
    p = rs.add_parser("list")
    p.add_argument("--flagged", action="store_true", help="only holds flagged by recovery")
    _add_formats(p)
    p = rs.add_parser("release", help="release a flagged hold without charging")
    p.add_argument("uniqueid")
    p.add_argument(
        "--hold", type=RECORD_ID, metavar="ID", help="which hold, when the call has several"
    )
    p = rs.add_parser("charge", help="settle a flagged hold by charging N seconds")
    p.add_argument("uniqueid")
    p.add_argument("--seconds", type=SECONDS, required=True)
    p.add_argument(
        "--hold", type=RECORD_ID, metavar="ID", help="which hold, when the call has several"
    )
    account.add_parsers(sub, RECORD_ID)
    return parser


def exit_code_for(exc: BaseException) -> int:
    """The error's own exit code (errors.py is the one table); 1 for anything else."""
    return exc.exit_code if isinstance(exc, CoobillError) else 1


def main(argv: Sequence[str] | None = None) -> int:
    # Before anything makes a file: the ledger, its -wal/-shm and the key files are private
    # whatever umask the shell had (022 under `make run`). systemd's UMask=0027 is the same idea.
    os.umask(0o077)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a bad argument already reported on stderr
        return exc.code if isinstance(exc.code, int) else 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    try:
        settings = load_settings(args.config)
        return asyncio.run(commands.dispatch(args, settings))
    except CoobillError as exc:
        print(f"coobill: {exc}", file=sys.stderr)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(f"coobill: {exc}", file=sys.stderr)
        return 74
    except Exception as exc:  # a database that is down, locked, unreadable...
        from sqlalchemy.exc import SQLAlchemyError

        if isinstance(exc, SQLAlchemyError):
            print(
                f"coobill: database error: {exc.__class__.__name__}: {str(exc).splitlines()[0]}",
                file=sys.stderr,
            )
            return 69
        raise


if __name__ == "__main__":
    sys.exit(main())
