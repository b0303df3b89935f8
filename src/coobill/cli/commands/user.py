"""`coobill user ...`: the portal's users."""

from __future__ import annotations

import argparse
import getpass
import sys

from coobill.cli.output import to_csv, to_json, to_table
from coobill.services import users
from coobill.services.context import BillingContext


def _password(args: argparse.Namespace) -> str:
    """--password, else a prompt on a terminal, else the first line of stdin."""
    if args.password is not None:
        return str(args.password)
    if sys.stdin.isatty():
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


HANDLERS = {
    "user.add": user_add,
    "user.list": user_list,
    "user.passwd": user_passwd,
    "user.remove": user_remove,
}
