"""`coobill migrate` and `coobill audit`: the ledger's schema brought to head (sealing what
came before the seal), and the ledger checked against itself."""

from __future__ import annotations

import argparse
import sys

from coobill.services import audit as audit_service
from coobill.services.context import BillingContext
from coobill.services.ledger_seal import (
    UNSEALED_REVISIONS,
    open_ledger,
    seal_entries_from_before_the_seal,
)
from coobill.storage import schema


async def migrate(ctx: BillingContext) -> int:
    before = await schema.current_revision(ctx.uow.engine)
    await schema.upgrade(ctx.uow.engine)
    if before in UNSEALED_REVISIONS:
        sealed = await seal_entries_from_before_the_seal(ctx)
        print(f"{sealed} ledger entries from before the seal sealed with the key")
    await open_ledger(ctx)
    print(f"database at {await schema.current_revision(ctx.uow.engine)} (head)")
    return 0


async def audit(args: argparse.Namespace, ctx: BillingContext) -> int:
    report = await audit_service.audit(ctx)
    for problem in report.problems:
        print(f"coobill: audit: {problem}", file=sys.stderr)
    if not report.ok:
        return 1
    print(f"audit ok: {report.extensions} extension(s), {report.entries} ledger entries")
    return 0


HANDLERS = {"audit": audit}
