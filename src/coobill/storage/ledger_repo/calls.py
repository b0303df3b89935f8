"""Call records: a channel's recorded legs, and one call recorded."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from coobill.storage import _fast
from coobill.storage.ledger_repo.base import (
    CALL,
)

# A channel's records: its legs (its PBX's), and any record from before migration 0004, which
# knows no PBX nor leg (pbx ''): the channel's, settled then. One statement, two lookups of
# the (pbx, uniqueid, leg) index.
_RECORDED = select(CALL.c.pbx, CALL.c.leg, CALL.c.cost, CALL.c.billable_seconds,
                   CALL.c.reservation_id).where(
    CALL.c.pbx.in_([bindparam("pbx"), bindparam("before", "")]),
    CALL.c.uniqueid == bindparam("uniqueid"))
_RECORD_CALL = insert(CALL).returning(CALL.c.id)


def _legs_and_before(rows: list[Any], pbx: str) -> tuple[list[Any], list[Any]]:
    """A channel's records split: its PBX's legs, and its records from before migration 0004
    (none for a PBX of no name, whose records are all of that kind)."""
    legs = [row for row in rows if row.pbx == pbx]
    return legs, [row for row in rows if row.pbx != pbx]


def recorded_legs(session: Session, pbx: str, uniqueid: str) -> tuple[list[Any], bool]:
    """The legs of a channel already recorded (leg, cost, billable_seconds, reservation_id),
    and whether it has a record from before migration 0004 (the channel settled then)."""
    rows = _fast.execute(session, _RECORDED, {"pbx": pbx, "uniqueid": uniqueid}).all()
    legs, before = _legs_and_before(rows, pbx)
    return legs, bool(before)


def record_call(session: Session, row: Mapping[str, object]) -> int:
    """Write one call record (`row`: its columns); its id. Unique on (pbx, uniqueid, leg):
    a second record of one leg is an IntegrityError."""
    return int(_fast.execute(session, _RECORD_CALL, row).scalar_one())


async def recorded_costs(session: AsyncSession, pbx: str,
                         uniqueid: str) -> tuple[dict[str, Decimal], Decimal | None]:
    """What a channel's legs were charged ({leg: cost}), and the cost of its record from
    before migration 0004 if it has one."""
    rows = list((await session.execute(_RECORDED, {"pbx": pbx, "uniqueid": uniqueid})).all())
    legs, before = _legs_and_before(rows, pbx)
    return ({row.leg: row.cost for row in legs},
            Decimal(before[0].cost) if before else None)
