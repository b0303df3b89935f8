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

_RECORDED_LEGS = select(CALL.c.leg, CALL.c.cost, CALL.c.billable_seconds,
                        CALL.c.reservation_id).where(
    CALL.c.pbx == bindparam("pbx"), CALL.c.uniqueid == bindparam("uniqueid"))
# A record from before migration 0004 knows no PBX nor leg: it is the channel's, settled.
_SETTLED_BEFORE_THE_UPGRADE = select(CALL.c.id, CALL.c.cost).where(
    CALL.c.pbx == "", CALL.c.uniqueid == bindparam("uniqueid")).limit(1)
# Both at once, for settlement: one statement fewer on the ledger thread (two lookups of
# the (pbx, uniqueid, leg) index).
_RECORDED_OR_BEFORE = select(CALL.c.pbx, CALL.c.leg, CALL.c.cost, CALL.c.billable_seconds,
                             CALL.c.reservation_id).where(
    CALL.c.pbx.in_([bindparam("pbx"), bindparam("before", "")]),
    CALL.c.uniqueid == bindparam("uniqueid"))
_RECORD_CALL = insert(CALL).returning(CALL.c.id)


def recorded_legs(session: Session, pbx: str, uniqueid: str) -> tuple[list[Any], bool]:
    """The legs of a channel already recorded (leg, cost, billable_seconds, reservation_id),
    and whether it has a record from before migration 0004 (no PBX, no leg: the channel
    settled then; never, for a PBX of no name, whose records are all of that kind)."""
    rows = _fast.execute(session, _RECORDED_OR_BEFORE, {"pbx": pbx, "uniqueid": uniqueid}).all()
    legs = [row for row in rows if row.pbx == pbx]
    return legs, len(legs) < len(rows)


def record_call(session: Session, row: Mapping[str, object]) -> int:
    """Write one call record (`row`: its columns); its id. Unique on (pbx, uniqueid, leg):
    a second record of one leg is an IntegrityError."""
    return int(_fast.execute(session, _RECORD_CALL, row).scalar_one())


async def recorded_costs(session: AsyncSession, pbx: str,
                         uniqueid: str) -> tuple[dict[str, Decimal], Decimal | None]:
    """What a channel's legs were charged ({leg: cost}), and the cost of its record from
    before migration 0004 if it has one."""
    legs = {row.leg: row.cost for row in (await session.execute(
        _RECORDED_LEGS, {"pbx": pbx, "uniqueid": uniqueid})).all()}
    legacy = (await session.execute(_SETTLED_BEFORE_THE_UPGRADE, {"uniqueid": uniqueid})).first()
    return legs, (Decimal(legacy.cost) if legacy is not None else None)
