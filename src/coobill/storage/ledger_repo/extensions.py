"""Extensions: the gate's view of one, its billing, and one locked for a change."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from coobill.storage import _fast
from coobill.storage.ledger_repo.base import (
    EXTENSION,
)
from coobill.storage.tables import Extension

_GATE_VIEW = select(
    EXTENSION.c.id, EXTENSION.c.number, EXTENSION.c.billing_enabled, EXTENSION.c.locked,
    EXTENSION.c.balance, EXTENSION.c.credit_limit, EXTENSION.c.reserved,
).where(EXTENSION.c.number == bindparam("number"))
_BILLING_OF = select(
    EXTENSION.c.id, EXTENSION.c.billing_enabled, EXTENSION.c.balance
).where(EXTENSION.c.number == bindparam("number"))
_IS_EXTENSION = select(EXTENSION.c.id).where(EXTENSION.c.number == bindparam("number"))


def gate_view(session: Session, number: str) -> Any:
    """What the gate decides on: the extension's id, number, billing_enabled, locked, balance,
    credit_limit and reserved; None for a number the ledger does not know."""
    return _fast.execute(session, _GATE_VIEW, {"number": number}).first()


def billing_of(session: Session, number: str) -> Any:
    """An extension's id, billing_enabled and balance (an ungated call's payer); or None."""
    return _fast.execute(session, _BILLING_OF, {"number": number}).first()


def is_extension(session: Session, number: str) -> bool:
    return _fast.execute(session, _IS_EXTENSION, {"number": number}).first() is not None


async def extension_for_update(session: AsyncSession, number: str) -> Extension | None:
    """The extension's row, locked for this transaction (FOR UPDATE on PostgreSQL; SQLite's
    BEGIN IMMEDIATE already holds the database's write lock)."""
    return (await session.execute(
        select(Extension).where(Extension.number == number).with_for_update()
    )).scalar_one_or_none()


def extension_for_update_now(session: Session, number: str) -> Extension | None:
    """`extension_for_update` in a unit of work of `UnitOfWorkFactory.run`."""
    return session.execute(
        select(Extension).where(Extension.number == number).with_for_update()
    ).scalar_one_or_none()
