"""What every fault test asserts at the end: each call debited once, at its cost; nothing left
held; the audit passes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import closing
from decimal import Decimal

from sqlalchemy import BigInteger, String, cast, func, select, type_coerce

from coobill.money import from_units
from coobill.services.audit import audit
from coobill.services.context import BillingContext
from coobill.services.extensions import show_extension
from coobill.services.reports import list_calls
from coobill.storage.tables import Call as CallRecord
from coobill.storage.tables import LedgerEntry, Reservation
from tests.faults.calls import Call


async def debits_by_call(ctx: BillingContext) -> dict[str, tuple[int, Decimal]]:
    """uniqueid -> (how many call_debit entries, their total); a debit names its call record."""
    async with ctx.uow() as uow:
        rows = (await uow.session.execute(
            select(CallRecord.uniqueid, func.count(),
                   func.sum(type_coerce(LedgerEntry.amount, BigInteger)))
            .join(CallRecord, LedgerEntry.reference == "call:" + cast(CallRecord.id, String))
            .where(LedgerEntry.kind == "call_debit").group_by(CallRecord.uniqueid))).all()
    return {ref: (int(n), -from_units(int(total))) for ref, n, total in rows}


async def holds_left(ctx: BillingContext) -> list[str]:
    """The uniqueids of the open holds (held or flagged)."""
    async with ctx.uow() as uow:
        return list((await uow.session.execute(
            select(Reservation.uniqueid).where(Reservation.state.in_(("held", "flagged")))
        )).scalars())


async def assert_debited_once(
    ctx: BillingContext, calls: Iterable[Call], balances: dict[str, str]
) -> None:
    """Every call recorded and debited exactly once at its cost, each extension's balance its
    recharge less its calls, nothing held, and the audit clean."""
    calls = list(calls)
    recorded = {c.uniqueid: c for c in (await list_calls(ctx, limit=10_000))[0]}
    debits = await debits_by_call(ctx)
    for call in calls:
        assert recorded[call.uniqueid].billable_seconds == call.billsec, call
        assert recorded[call.uniqueid].cost == call.cost, call
        assert debits[call.uniqueid] == (1, call.cost), call
    assert set(debits) == {c.uniqueid for c in calls}
    for number, recharged in balances.items():
        spent = sum((c.cost for c in calls if c.extension == number), Decimal(0))
        view = await show_extension(ctx, number)
        assert (view.balance, view.reserved) == (Decimal(recharged) - spent, 0), number
    assert await holds_left(ctx) == []
    report = await audit(ctx)
    assert report.ok, report.problems


def integrity(path: str) -> list[tuple[str, ...]]:
    """SQLite's own verdict on a ledger file: [("ok",)] when nothing is corrupt."""
    with closing(sqlite3.connect(path)) as db:
        return db.execute("PRAGMA integrity_check").fetchall() + db.execute(
            "PRAGMA foreign_key_check").fetchall()
