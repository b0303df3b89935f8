"""Statements: one extension's month, from its ledger - the balance it opened with, each
recharge, charged call, fee and adjustment, and the balance it closed with.

The ledger is the only source: the opening balance is the sum of the extension's entries
before the month (a balance is the sum of its entries), each line is one entry of the month,
and the closing balance is the opening plus the month's lines - so a statement always adds
up, and agrees with the balance shown at the month's end. Months are the PBX's (its time
zone: the ledger's times are its local times). Rendering: services/statement_render.py.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, func, select, type_coerce

from coobill.errors import BadRequest, UnknownExtension
from coobill.money import ZERO, from_units
from coobill.services import ledger
from coobill.services.context import BillingContext
from coobill.services.extensions import check_number
from coobill.services.settings import billing_settings
from coobill.storage.tables import Call, Extension, LedgerEntry

RECHARGES, CALLS, FEES, ADJUSTMENTS = "recharge", "call", "fee", "adjustment"
KINDS = (RECHARGES, CALLS, FEES, ADJUSTMENTS)
_KIND_OF_ENTRY = {ledger.RECHARGE: RECHARGES, ledger.CALL_DEBIT: CALLS, ledger.FEE: FEES,
                  ledger.ADJUSTMENT: ADJUSTMENTS}
_MONTH = re.compile(r"(\d{4})-(\d{2})", re.ASCII)  # not other scripts' digits
_IDS_AT_ONCE = 500


@dataclass(frozen=True, slots=True)
class StatementLine:
    at: datetime
    kind: str  # recharge | call | fee | adjustment
    description: str  # who recharged or adjusted, the fee's name, the number a call dialled
    seconds: int | None  # a call's billable seconds
    amount: Decimal  # signed, as the ledger moved the balance
    balance: Decimal  # after this line


@dataclass(frozen=True, slots=True)
class Statement:
    extension: str
    name: str
    month: str  # 2027-01
    first_day: date
    last_day: date
    currency: str
    currency_symbol: str
    opening: Decimal
    closing: Decimal
    lines: tuple[StatementLine, ...]

    def total(self, kind: str) -> Decimal:
        return sum((line.amount for line in self.lines if line.kind == kind), ZERO)

    def count(self, kind: str) -> int:
        return sum(1 for line in self.lines if line.kind == kind)


def check_month(text: str | None) -> tuple[date, date]:
    """A month, YYYY-MM: its first day and the first day of the next."""
    found = _MONTH.fullmatch((text or "").strip())
    if found is None or not 1 <= int(found[2]) <= 12 or int(found[1]) < 1:
        raise BadRequest(f"month: {text!r} is not a month, YYYY-MM", field="month")
    year, month = int(found[1]), int(found[2])
    if (year, month) == (9999, 12):  # it would end in the year 10000, which no date holds
        raise BadRequest(f"month: {text!r} is past the last month a statement can end",
                         field="month")
    return date(year, month, 1), date(year + month // 12, month % 12 + 1, 1)


def _units(column: Any) -> Any:
    return type_coerce(column, BigInteger)


async def statement(ctx: BillingContext, number: str, month: str) -> Statement:
    """The statement of extension `number` for `month` (YYYY-MM)."""
    number = check_number(number)
    first, after = check_month(month)
    start, end = datetime.combine(first, datetime.min.time()), datetime.combine(
        after, datetime.min.time())
    async with ctx.uow.read() as uow:
        session = uow.session
        ext = (await session.execute(select(Extension).where(Extension.number == number))
               ).scalar_one_or_none()
        if ext is None:
            raise UnknownExtension(f"extension {number} does not exist", field="extension")
        settings = await billing_settings(uow)
        before = (await session.execute(
            select(func.coalesce(func.sum(_units(LedgerEntry.amount)), 0))
            .where(LedgerEntry.extension_id == ext.id, LedgerEntry.created_at < start)
        )).scalar_one()
        entries = list((await session.execute(
            select(LedgerEntry.created_at, LedgerEntry.kind, LedgerEntry.amount,
                   LedgerEntry.reference, LedgerEntry.who)
            .where(LedgerEntry.extension_id == ext.id, LedgerEntry.created_at >= start,
                   LedgerEntry.created_at < end)
            .order_by(LedgerEntry.created_at, LedgerEntry.id))).tuples())
        calls = await _calls_of(session, [r for _, k, _, r, _ in entries
                                          if k == ledger.CALL_DEBIT and r])
    opening = from_units(int(before))
    lines, balance = [], opening
    for at, kind, amount, reference, who in entries:
        balance += amount
        dialled, seconds = calls.get(reference or "", ("", None))
        lines.append(StatementLine(at, _KIND_OF_ENTRY.get(kind, kind),
                                   dialled if kind == ledger.CALL_DEBIT else who, seconds,
                                   amount, balance))
    return Statement(ext.number, ext.name, f"{first.year:04d}-{first.month:02d}", first,
                     date.fromordinal(after.toordinal() - 1), settings.currency,
                     settings.currency_symbol, opening, balance, tuple(lines))


async def _calls_of(session: Any, references: Sequence[str]) -> dict[str, tuple[str, int]]:
    """A debit's call (its reference is call:<record id>): the number dialled, the seconds."""
    ids = [int(r.removeprefix("call:")) for r in references
           if r.startswith("call:") and r[5:].isascii() and r[5:].isdigit()]
    found: dict[str, tuple[str, int]] = {}
    for i in range(0, len(ids), _IDS_AT_ONCE):
        rows = await session.execute(
            select(Call.id, Call.dialled_number, Call.billable_seconds)
            .where(Call.id.in_(ids[i:i + _IDS_AT_ONCE])))
        found.update({f"call:{cid}": (dialled, seconds) for cid, dialled, seconds in rows})
    return found


async def statements_of_month(ctx: BillingContext, month: str) -> list[Statement]:
    """The month's statement of every extension with billing on, or with entries that month."""
    first, after = check_month(month)
    start, end = datetime.combine(first, datetime.min.time()), datetime.combine(
        after, datetime.min.time())
    async with ctx.uow.read() as uow:
        moved = select(LedgerEntry.extension_id).where(
            LedgerEntry.created_at >= start, LedgerEntry.created_at < end)
        numbers = list((await uow.session.execute(
            select(Extension.number)
            .where(Extension.billing_enabled.is_(True) | Extension.id.in_(moved))
            .order_by(func.length(Extension.number), Extension.number))).scalars())
    return [await statement(ctx, n, month) for n in numbers]
