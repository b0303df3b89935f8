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
_RECORD_CALL = insert(CALL).returning(CALL.c.id)


def recorded_legs(session: Session, pbx: str, uniqueid: str) -> list[Any]:
    """The legs of a channel already recorded (leg, cost, billable_seconds, reservation_id)."""
    return list(_fast.execute(session, _RECORDED_LEGS, {"pbx": pbx, "uniqueid": uniqueid}).all())


def settled_before_the_upgrade(session: Session, uniqueid: str) -> bool:
    """A record of this channel from before migration 0004 (no PBX, no leg) exists."""
    return _fast.execute(session, _SETTLED_BEFORE_THE_UPGRADE,
                         {"uniqueid": uniqueid}).first() is not None


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
