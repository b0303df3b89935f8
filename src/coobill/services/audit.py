"""The audit: every balance equals the sum of its ledger entries, and the ledger is a chain."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import BigInteger, func, select, type_coerce

from coobill.money import from_units
from coobill.services.context import BillingContext
from coobill.storage.tables import Call, Extension, LedgerEntry, Reservation


@dataclass
class AuditReport:
    extensions: int = 0
    entries: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _units(column):  # type: ignore[no-untyped-def]
    return type_coerce(column, BigInteger)


async def audit(ctx: BillingContext) -> AuditReport:
    report = AuditReport()
    async with ctx.uow() as uow:
        s = uow.session
        sums = dict(
            (await s.execute(
                select(LedgerEntry.extension_id, func.sum(_units(LedgerEntry.amount)))
                .group_by(LedgerEntry.extension_id)
            )).tuples().all()
        )
        counts = dict(
            (await s.execute(
                select(LedgerEntry.extension_id, func.count()).group_by(LedgerEntry.extension_id)
            )).tuples().all()
        )
        for ext_id, number, balance in (
            await s.execute(select(Extension.id, Extension.number, _units(Extension.balance)))
        ).tuples():
            report.extensions += 1
            report.entries += int(counts.get(ext_id, 0))
            expected = int(sums.get(ext_id) or 0)
            if int(balance) != expected:
                report.problems.append(
                    f"extension {number}: balance {from_units(int(balance))} but its ledger sums "
                    f"to {from_units(expected)}"
                )
        # Each entry's balance_after must follow from the one before it.
        last: dict[int, int] = {}
        rows = await s.execute(
            select(LedgerEntry.id, LedgerEntry.extension_id, _units(LedgerEntry.amount),
                   _units(LedgerEntry.balance_after)).order_by(LedgerEntry.id)
        )
        for entry_id, ext_id, amount, after in rows.tuples():
            before = last.get(ext_id, 0)
            if before + int(amount) != int(after):
                report.problems.append(
                    f"ledger entry {entry_id}: balance after {from_units(int(after))} does not "
                    f"follow {from_units(before)} + {from_units(int(amount))}"
                )
            last[ext_id] = int(after)
        # Every debited call has exactly its cost in the ledger.
        debits = dict(
            (await s.execute(
                select(LedgerEntry.reference, -func.sum(_units(LedgerEntry.amount)))
                .where(LedgerEntry.kind == "call_debit").group_by(LedgerEntry.reference)
            )).tuples().all()
        )
        for uniqueid, cost in (
            await s.execute(select(Call.uniqueid, _units(Call.cost)).where(Call.cost != 0))
        ).tuples():
            if int(debits.pop(uniqueid, 0)) != int(cost):
                report.problems.append(f"call {uniqueid}: cost {from_units(int(cost))} not debited once")
        for uniqueid in debits:
            report.problems.append(f"ledger debit for call {uniqueid} has no call record")
        holds = dict(
            (await s.execute(
                select(Reservation.extension_id, func.sum(_units(Reservation.amount)))
                .group_by(Reservation.extension_id)
            )).tuples().all()
        )
        for ext_id, number, reserved in (
            await s.execute(select(Extension.id, Extension.number, _units(Extension.reserved)))
        ).tuples():
            if int(reserved) != int(holds.get(ext_id) or 0):
                report.problems.append(
                    f"extension {number}: reserved {from_units(int(reserved))} but its live "
                    f"calls hold {from_units(int(holds.get(ext_id) or 0))}"
                )
        settled = (
            await s.execute(select(func.count()).select_from(Reservation).join(
                Call, Call.uniqueid == Reservation.uniqueid))
        ).scalar_one()
        if settled:
            report.problems.append(f"{settled} holds belong to calls already settled")
    return report
