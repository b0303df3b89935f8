"""Holds: taken only while the funds cover them, closed, shrunk, flagged, and listed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from coobill.storage import _fast
from coobill.storage.ledger_repo.base import (
    EXTENSION,
    FLAGGED,
    FUNDS,
    HELD,
    HOLD,
    IS_OPEN,
)
from coobill.storage.tables import Money, Reservation

_RESERVE = (
    update(EXTENSION)
    .where(EXTENSION.c.id == bindparam("extension_id"),
           bindparam("amount", type_=Money()) <= FUNDS)
    .values(reserved=EXTENSION.c.reserved + bindparam("amount", type_=Money()))
)
_UNRESERVE = (
    update(EXTENSION)
    .where(EXTENSION.c.id == bindparam("extension_id"))
    .values(reserved=EXTENSION.c.reserved - bindparam("amount", type_=Money()))
)
_NEW_HOLD = insert(HOLD).returning(HOLD.c.id)
_CLOSE = (
    update(HOLD)
    .where(HOLD.c.id == bindparam("hold_id"), IS_OPEN)
    .values(state=bindparam("state"), note=bindparam("note"), closed_at=bindparam("at"))
    .returning(HOLD.c.extension_id, HOLD.c.amount)
)
_CLOSE_BY_TOKEN = (
    update(HOLD)
    .where(HOLD.c.token == bindparam("hold_token"), IS_OPEN)
    .values(state=bindparam("state"), note=bindparam("note"), closed_at=bindparam("at"))
    .returning(HOLD.c.id, HOLD.c.extension_id, HOLD.c.amount)
)
_SHRINK = (
    update(HOLD)
    .where(HOLD.c.id == bindparam("hold_id"), IS_OPEN,
           HOLD.c.amount == bindparam("was", type_=Money()))
    .values(amount=bindparam("amount", type_=Money()))
    .returning(HOLD.c.extension_id)
)
_FLAG = (
    update(HOLD)
    .where(HOLD.c.id == bindparam("hold_id"), HOLD.c.state == HELD)
    .values(state=FLAGGED, note=bindparam("note"))
)
_OPEN_HOLD_OF_CHANNEL = select(
    HOLD.c.id, HOLD.c.amount, HOLD.c.tariff, HOLD.c.tariff_schedule, HOLD.c.limit_seconds,
).where(
    HOLD.c.token == bindparam("token"), HOLD.c.uniqueid == bindparam("uniqueid"),
    HOLD.c.pbx == bindparam("pbx"), IS_OPEN,
)
_CHANNEL_HOLDS = (
    select(HOLD.c.id, HOLD.c.token, HOLD.c.extension_id, HOLD.c.extension_number,
           HOLD.c.number, HOLD.c.amount, HOLD.c.billed, HOLD.c.limit_seconds,
           HOLD.c.tariff, HOLD.c.tariff_schedule, HOLD.c.rate_id, HOLD.c.rate_label,
           HOLD.c.state, HOLD.c.created_at)
    .where(HOLD.c.pbx == bindparam("pbx"), HOLD.c.uniqueid == bindparam("uniqueid"))
    .order_by(HOLD.c.id)
    .with_for_update()
)


def take_hold(session: Session, *, extension_id: int | None, amount: Decimal,
              **row: object) -> int | None:
    """Reserve `amount` of the extension's funds - only while they cover it, in one
    conditional UPDATE - and write the hold's row (`row`: its columns), HELD; the hold's id,
    or None when the funds did not cover it. A zero amount reserves nothing."""
    if extension_id is not None and amount:
        reserved = _fast.execute(session, _RESERVE,
                                 {"extension_id": extension_id, "amount": amount})
        if not reserved.rowcount:
            return None
    hold_id = _fast.execute(session, _NEW_HOLD, {
        "extension_id": extension_id, "amount": amount, "state": HELD, "note": "",
        "closed_at": None, **row,
    }).scalar_one()
    return int(hold_id)


def close_hold(session: Session, hold_id: int, state: str, *, at: datetime,
               note: str) -> tuple[int | None, Decimal] | None:
    """Move an open hold to the closed `state` and give its amount back to the extension's
    reserved funds; (extension_id, amount) it held, or None when it was not open."""
    row = _fast.execute(session, _CLOSE, {"hold_id": hold_id, "state": state, "note": note,
                                          "at": at}).first()
    if row is None:
        return None
    _unreserve(session, row.extension_id, row.amount)
    return row.extension_id, row.amount


def close_hold_by_token(session: Session, token: str, state: str, *, at: datetime,
                        note: str) -> tuple[int, int | None, Decimal] | None:
    """`close_hold` for the open hold an authorization's token names: (hold_id,
    extension_id, amount), or None."""
    row = _fast.execute(session, _CLOSE_BY_TOKEN, {"hold_token": token, "state": state,
                                                   "note": note, "at": at}).first()
    if row is None:
        return None
    _unreserve(session, row.extension_id, row.amount)
    return row.id, row.extension_id, row.amount


def shrink_hold(session: Session, hold_id: int, *, was: Decimal, to: Decimal) -> bool:
    """Lower an open hold still holding `was` to `to`, giving the difference back; False when
    it is closed or its amount changed meanwhile."""
    row = _fast.execute(session, _SHRINK, {"hold_id": hold_id, "was": was, "amount": to}).first()
    if row is None:
        return False
    _unreserve(session, row.extension_id, was - to)
    return True


def flag_hold(session: Session, hold_id: int, note: str) -> bool:
    """Mark a HELD hold FLAGGED (its funds stay reserved); False when it was not held."""
    return bool(_fast.execute(session, _FLAG, {"hold_id": hold_id, "note": note}).rowcount)


def open_hold_of_channel(session: Session, token: str, uniqueid: str, pbx: str) -> Any:
    """The open hold an authorization of this channel made: id, amount, tariff,
    limit_seconds; or None."""
    return _fast.execute(session, _OPEN_HOLD_OF_CHANNEL,
                         {"token": token, "uniqueid": uniqueid, "pbx": pbx}).first()


def channel_holds(session: Session, pbx: str, uniqueid: str) -> list[Any]:
    """Every hold of a channel, oldest first, locked for this transaction (FOR UPDATE)."""
    return list(_fast.execute(session, _CHANNEL_HOLDS, {"pbx": pbx, "uniqueid": uniqueid}).all())


def _unreserve(session: Session, extension_id: int | None, amount: Decimal) -> None:
    if extension_id is not None and amount:
        _fast.execute(session, _UNRESERVE, {"extension_id": extension_id, "amount": amount})


async def holds_in(session: AsyncSession, states: Sequence[str]) -> list[Reservation]:
    """The holds in these states, oldest first."""
    query = (select(Reservation).where(Reservation.state.in_(states))
             .order_by(Reservation.created_at, Reservation.id))
    return list((await session.execute(query)).scalars())


async def open_hold_tokens(session: AsyncSession, pbx: str,
                           made_before: datetime | None) -> list[tuple[str, str]]:
    """(uniqueid, token) of this PBX's open holds, made before `made_before` if given."""
    query = select(Reservation.uniqueid, Reservation.token).where(
        Reservation.pbx == pbx, Reservation.state.in_((HELD, FLAGGED)))
    if made_before is not None:
        query = query.where(Reservation.created_at < made_before)
    return [(u, t) for u, t in (await session.execute(query)).tuples()]


async def open_holds_of_channel(session: AsyncSession, uniqueid: str,
                                hold_id: int | None = None) -> list[Reservation]:
    """A channel's open holds (or the one of them with id `hold_id`), oldest first."""
    query = select(Reservation).where(Reservation.uniqueid == uniqueid,
                                      Reservation.state.in_((HELD, FLAGGED)))
    if hold_id is not None:
        query = query.where(Reservation.id == hold_id)
    return list((await session.execute(query.order_by(Reservation.id))).scalars())
