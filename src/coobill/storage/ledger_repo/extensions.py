"""Extensions: the gate's view of one, its billing, and one locked for a change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
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
    EXTENSION.c.cap_daily, EXTENSION.c.cap_monthly, EXTENSION.c.max_call_cost,
    EXTENSION.c.max_price_minute, EXTENSION.c.spent_day, EXTENSION.c.spent_day_of,
    EXTENSION.c.spent_month, EXTENSION.c.spent_month_of, EXTENSION.c.low_balance_threshold,
).where(EXTENSION.c.number == bindparam("number"))
_BILLING_OF = select(
    EXTENSION.c.id, EXTENSION.c.billing_enabled, EXTENSION.c.balance
).where(EXTENSION.c.number == bindparam("number"))
_IS_EXTENSION = select(EXTENSION.c.id).where(EXTENSION.c.number == bindparam("number"))


def gate_view(session: Session, number: str) -> Any:
    """What the gate decides on: the extension's id, number, billing_enabled, locked, balance,
    credit_limit and reserved, its caps and what its calls spent (services/caps.py), its
    low-balance threshold; None for a number the ledger does not know."""
    return _fast.execute(session, _GATE_VIEW, {"number": number}).first()


def billing_of(session: Session, number: str) -> Any:
    """An extension's id, billing_enabled and balance (an ungated call's payer); or None."""
    return _fast.execute(session, _BILLING_OF, {"number": number}).first()


def is_extension(session: Session, number: str) -> bool:
    return _fast.execute(session, _IS_EXTENSION, {"number": number}).first() is not None


_LOW_BALANCE_VIEW = select(
    EXTENSION.c.number, EXTENSION.c.balance, EXTENSION.c.credit_limit,
    EXTENSION.c.low_balance_threshold, EXTENSION.c.low_balance_since,
).where(EXTENSION.c.id == bindparam("extension_id"))
_MARK_LOW = (
    update(EXTENSION)
    .where(EXTENSION.c.id == bindparam("extension_id"), EXTENSION.c.low_balance_since.is_(None))
    .values(low_balance_since=bindparam("since"))
)
_REARM_LOW = (
    update(EXTENSION)
    .where(EXTENSION.c.id == bindparam("extension_id"),
           EXTENSION.c.low_balance_since.is_not(None))
    .values(low_balance_since=None)
)


def low_balance_view(session: Session, extension_id: int) -> Any:
    """An extension's number, balance, credit_limit, low_balance_threshold and
    low_balance_since (services/low_balance.py); None for an unknown one."""
    return _fast.execute(session, _LOW_BALANCE_VIEW, {"extension_id": extension_id}).first()


def mark_low_balance(session: Session, extension_id: int, at: datetime) -> bool:
    """Record that its funds fell below the threshold at `at`: False when that was recorded
    already (the crossing is another change's)."""
    return bool(_fast.execute(session, _MARK_LOW,
                              {"extension_id": extension_id, "since": at}).rowcount)


def rearm_low_balance(session: Session, extension_id: int) -> bool:
    return bool(_fast.execute(session, _REARM_LOW, {"extension_id": extension_id}).rowcount)


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
