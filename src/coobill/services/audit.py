"""The audit: the ledger is a sealed chain, every balance equals the sum of its entries, and
the records (recharges, calls, holds) agree with the ledger.

What a rewrite of the database alone cannot get past (services/ledger.py seals entries with a
key kept outside the database):
- an entry changed (its amount, balance, reference, time...) breaks its own seal;
- an entry removed breaks the seal of the entry after it; the last entries removed, the head;
- an entry added without the key has no valid seal;
and what the cross-checks catch besides: a balance that is not the sum of its entries, a
recharge or a call whose entry is missing or says something else, reserved funds that are not
the sum of the open holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, SQLColumnExpression, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from coobill.money import from_units
from coobill.services import holds
from coobill.services.context import BillingContext
from coobill.services.ledger import CALL_DEBIT, FEE, RECHARGE, entry_text, mac, sealed_head
from coobill.storage.tables import (
    Call,
    Extension,
    LedgerEntry,
    LedgerHead,
    Recharge,
    Reservation,
)


@dataclass
class AuditReport:
    extensions: int = 0
    entries: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _units(column: SQLColumnExpression[Any]) -> ColumnElement[int]:
    return type_coerce(column, BigInteger)


async def audit(ctx: BillingContext) -> AuditReport:
    report = AuditReport()
    async with ctx.uow() as uow:
        s = uow.session
        numbers = await _balances(s, report)
        await _chain(s, ctx.uow.ledger_key, numbers, report)
        await _calls(s, numbers, report)
        await _recharges(s, report)
        await _holds(s, report)
    return report


async def _balances(s: AsyncSession, report: AuditReport) -> dict[int, str]:
    """Each balance is the sum of its entries, and each entry's balance follows the last."""
    sums = dict((await s.execute(
        select(LedgerEntry.extension_id, func.sum(_units(LedgerEntry.amount)))
        .group_by(LedgerEntry.extension_id))).tuples().all())
    numbers: dict[int, str] = {}
    for ext_id, number, balance in (
        await s.execute(select(Extension.id, Extension.number, _units(Extension.balance)))
    ).tuples():
        numbers[ext_id] = number
        report.extensions += 1
        expected = int(sums.get(ext_id) or 0)
        if int(balance) != expected:
            report.problems.append(
                f"extension {number}: balance {from_units(int(balance))} but its ledger sums "
                f"to {from_units(expected)}")
    last: dict[int, int] = {}
    rows = await s.execute(
        select(LedgerEntry.id, LedgerEntry.extension_id, _units(LedgerEntry.amount),
               _units(LedgerEntry.balance_after)).order_by(LedgerEntry.id))
    for entry_id, ext_id, amount, after in rows.tuples():
        report.entries += 1
        before = last.get(ext_id, 0)
        if before + int(amount) != int(after):
            report.problems.append(
                f"ledger entry {entry_id}: balance after {from_units(int(after))} does not "
                f"follow {from_units(before)} + {from_units(int(amount))}")
        last[ext_id] = int(after)
    return numbers


async def _chain(s: AsyncSession, key: bytes, numbers: dict[int, str],
                 report: AuditReport) -> None:
    """Every entry's seal, and the head's. Each entry is checked against the seal stored
    before it, so one change is named once, where it was made."""
    previous = ""
    last_id, count = 0, 0
    rows = await s.execute(select(LedgerEntry).order_by(LedgerEntry.id))
    for entry in rows.scalars():
        count += 1
        last_id = entry.id
        expected = mac(key, entry_text(previous, entry.extension_id,
                                       numbers.get(entry.extension_id, ""), entry.kind,
                                       entry.amount, entry.balance_after, entry.reference,
                                       entry.who, entry.created_at))
        if entry.mac is None:
            report.problems.append(f"ledger entry {entry.id}: not sealed")
        elif entry.mac != expected:
            report.problems.append(
                f"ledger entry {entry.id}: its seal does not match: it was changed, or an "
                "entry just before it was removed or added")
        previous = entry.mac or ""
    head = (await s.execute(select(LedgerHead).where(LedgerHead.id == 1))).scalar_one_or_none()
    if head is None:
        report.problems.append("ledger head: missing")
        return
    if head.mac != sealed_head(key, head.last_entry_id, head.last_mac, head.entries):
        report.problems.append("ledger head: its seal does not match: it was rewritten")
    elif (head.last_entry_id, head.last_mac, head.entries) != (last_id, previous, count):
        report.problems.append(
            f"ledger head: it ends at entry {head.last_entry_id} after {head.entries} entries, "
            f"the ledger at entry {last_id} after {count}: entries were removed or added at "
            "its end")


async def _calls(s: AsyncSession, numbers: dict[int, str], report: AuditReport) -> None:
    """Every charged call has exactly its cost debited once, to its caller; every debit has
    its call."""
    debits: dict[str, list[tuple[int, int]]] = {}
    for reference, ext_id, amount in (await s.execute(
        select(LedgerEntry.reference, LedgerEntry.extension_id, _units(LedgerEntry.amount))
        .where(LedgerEntry.kind == CALL_DEBIT))).tuples():
        debits.setdefault(str(reference), []).append((ext_id, -int(amount)))
    for call_id, uniqueid, caller, cost in (await s.execute(
        select(Call.id, Call.uniqueid, Call.caller_extension, _units(Call.cost))
        .where(Call.cost != 0))).tuples():
        found = debits.pop(f"call:{call_id}", [])
        if [amount for _, amount in found] != [int(cost)]:
            report.problems.append(
                f"call {uniqueid} (record {call_id}): cost {from_units(int(cost))} not "
                "debited once")
        elif numbers.get(found[0][0]) != caller:
            report.problems.append(
                f"call {uniqueid} (record {call_id}): debited to another extension than its "
                f"caller {caller}")
    for reference in debits:
        report.problems.append(f"ledger debit {reference} has no charged call record")


async def _recharges(s: AsyncSession, report: AuditReport) -> None:
    """Every recharge record has its entry, saying the same; every recharge entry its record.
    A fee's record (kind "fee") is its fee entry's, by the entry's reference."""
    entries = {
        reference: (ext_id, int(amount), int(after))
        for reference, ext_id, amount, after in (await s.execute(
            select(LedgerEntry.reference, LedgerEntry.extension_id, _units(LedgerEntry.amount),
                   _units(LedgerEntry.balance_after))
            .where(LedgerEntry.kind.in_((RECHARGE, FEE))))).tuples()
    }
    for rid, kind, reference, ext_id, before, amount, after in (await s.execute(
        select(Recharge.id, Recharge.kind, Recharge.reference, Recharge.extension_id,
               _units(Recharge.balance_before), _units(Recharge.amount),
               _units(Recharge.balance_after)))).tuples():
        entry = entries.pop(reference if kind == FEE else f"recharge:{rid}", None)
        if entry != (ext_id, int(amount), int(after)) or int(before) + int(amount) != int(after):
            report.problems.append(
                f"{kind} {rid}: the record and its ledger entry do not agree")
    for reference in entries:
        report.problems.append(f"ledger entry {reference} has no recharge record")


async def _holds(s: AsyncSession, report: AuditReport) -> None:
    """Reserved funds are the sum of the open holds, never negative; no open hold belongs to
    a call already recorded."""
    open_sums = dict((await s.execute(
        select(Reservation.extension_id, func.sum(_units(Reservation.amount)))
        .where(Reservation.state.in_(holds.OPEN))
        .group_by(Reservation.extension_id))).tuples().all())
    for ext_id, number, reserved in (
        await s.execute(select(Extension.id, Extension.number, _units(Extension.reserved)))
    ).tuples():
        held = int(open_sums.get(ext_id) or 0)
        if int(reserved) != held or int(reserved) < 0:
            report.problems.append(
                f"extension {number}: reserved {from_units(int(reserved))} but its live "
                f"calls hold {from_units(held)}")
    settled = (await s.execute(
        select(func.count()).select_from(Reservation).join(
            Call, Call.reservation_id == Reservation.id)
        .where(Reservation.state.in_(holds.OPEN)))).scalar_one()
    if settled:
        report.problems.append(f"{settled} holds belong to calls already settled")
