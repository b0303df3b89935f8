"""Posting to the ledger: the only code that changes a balance.

These functions take a sync Session: the hot paths run them through UnitOfWorkFactory.run,
the other services through `await uow.session.run_sync(...)`.

Every change is one conditional UPDATE ... RETURNING (no read-modify-write, so two daemons on
one PostgreSQL cannot lose an update) plus one append-only entry carrying the balance after.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from coobill.errors import UnknownExtension
from coobill.storage.fast import execute
from coobill.storage.tables import Extension, LedgerEntry, Money, table
from coobill.storage.uow import UnitOfWork

RECHARGE = "recharge"
CALL_DEBIT = "call_debit"
ADJUSTMENT = "adjustment"


_MOVE_BALANCE = (
    update(table(Extension))
    .where(table(Extension).c.id == bindparam("extension_id"))
    .values(balance=table(Extension).c.balance + bindparam("amount", type_=Money()))
    .returning(table(Extension).c.balance)
)
_NEW_ENTRY = insert(table(LedgerEntry))


def post_entry(
    session: Session,
    *,
    extension_id: int,
    kind: str,
    amount: Decimal,
    at: datetime,
    reference: str | None = None,
    who: str = "",
) -> tuple[Decimal, Decimal]:
    """Add `amount` (signed) to a balance; returns (balance before, balance after)."""
    after = execute(
        session, _MOVE_BALANCE, {"extension_id": extension_id, "amount": amount}
    ).scalar_one()
    execute(session, _NEW_ENTRY, {
        "extension_id": extension_id, "kind": kind, "amount": amount, "balance_after": after,
        "reference": reference, "who": who, "created_at": at,
    })
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


_extension = table(Extension)
# Built once: the hot paths run these thousands of times a second.
_HOLD = (
    update(_extension)
    .where(
        _extension.c.id == bindparam("extension_id"),
        _extension.c.balance + _extension.c.credit_limit - _extension.c.reserved
        >= bindparam("amount", type_=Money()),
    )
    .values(reserved=_extension.c.reserved + bindparam("amount", type_=Money()))
)
_RELEASE = (
    update(_extension)
    .where(_extension.c.id == bindparam("extension_id"))
    .values(reserved=_extension.c.reserved - bindparam("amount", type_=Money()))
)


def hold(session: Session, extension_id: int, amount: Decimal) -> bool:
    """Add `amount` to what the extension's live calls hold, only if its funds still cover it
    (a conditional update, so two daemons on one ledger can never both spend the same funds).
    False means the funds moved since they were read: read again and decide again."""
    result = execute(session, _HOLD, {"extension_id": extension_id, "amount": amount})
    return bool(result.rowcount)


def release_hold(session: Session, extension_id: int | None, amount: Decimal) -> None:
    """Take a settled or released call's hold off its extension."""
    if extension_id is None or not amount:
        return
    execute(session, _RELEASE, {"extension_id": extension_id, "amount": amount})


_SETTLE = (
    update(_extension)
    .where(_extension.c.id == bindparam("extension_id"))
    .values(
        balance=_extension.c.balance - bindparam("debit", type_=Money()),
        reserved=_extension.c.reserved - bindparam("held", type_=Money()),
    )
    .returning(_extension.c.balance)
)


def settle_hold(
    session: Session,
    *,
    extension_id: int,
    debit: Decimal,
    held: Decimal,
    at: datetime,
    reference: str,
) -> Decimal | None:
    """Debit an ended call's cost and take its hold off the extension, in one update, with
    the debit's ledger entry; returns the balance after (None: no such extension)."""
    after = execute(
        session, _SETTLE, {"extension_id": extension_id, "debit": debit, "held": held}
    ).scalar_one_or_none()
    if after is not None and debit:
        execute(session, _NEW_ENTRY, {
            "extension_id": extension_id, "kind": CALL_DEBIT, "amount": -debit,
            "balance_after": after, "reference": reference, "who": "", "created_at": at,
        })
    return after  # type: ignore[no-any-return]
