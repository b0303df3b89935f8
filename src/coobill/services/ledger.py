"""Posting to the ledger: the only code that changes a balance.

Every change is one conditional UPDATE ... RETURNING (no read-modify-write, so two daemons on
one PostgreSQL cannot lose an update) plus one append-only entry carrying the balance after.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, func, select, type_coerce, update

from coobill.errors import UnknownExtension
from coobill.money import from_units
from coobill.storage.tables import Extension, LedgerEntry, Reservation
from coobill.storage.uow import UnitOfWork

RECHARGE = "recharge"
CALL_DEBIT = "call_debit"
ADJUSTMENT = "adjustment"


async def post_entry(
    uow: UnitOfWork,
    *,
    extension_id: int,
    kind: str,
    amount: Decimal,
    at: datetime,
    reference: str | None = None,
    who: str = "",
) -> tuple[Decimal, Decimal]:
    """Add `amount` (signed) to a balance; returns (balance before, balance after)."""
    stmt = (
        update(Extension)
        .where(Extension.id == extension_id)
        .values(balance=Extension.balance + amount)
        .returning(Extension.balance)
    )
    after = (await uow.session.execute(stmt)).scalar_one()
    uow.session.add(
        LedgerEntry(
            extension_id=extension_id,
            kind=kind,
            amount=amount,
            balance_after=after,
            reference=reference,
            who=who,
            created_at=at,
        )
    )
    return after - amount, after


async def lock_extension(uow: UnitOfWork, number: str) -> Extension:
    """The extension's row, locked for this transaction (FOR UPDATE on PostgreSQL; SQLite's
    BEGIN IMMEDIATE already holds the database's write lock)."""
    ext = (
        await uow.session.execute(
            select(Extension).where(Extension.number == number).with_for_update()
        )
    ).scalar_one_or_none()
    if ext is None:
        raise UnknownExtension(f"extension {number} does not exist", field="extension")
    return ext


async def held_by_live_calls(uow: UnitOfWork, extension_id: int) -> Decimal:
    """What the extension's live calls hold (flagged reservations still hold their funds)."""
    units = (
        await uow.session.execute(
            select(func.coalesce(func.sum(type_coerce(Reservation.amount, BigInteger)), 0)).where(
                Reservation.extension_id == extension_id
            )
        )
    ).scalar_one()
    return from_units(int(units))
