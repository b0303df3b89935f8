"""Holds: taken only while the funds cover them, closed, shrunk, flagged, and listed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, case, insert, select, update
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
# The same, also only while the day's and the month's caps cover it: what the period's calls
# were debited (its counter, if it is this period's) + every open hold + this one. On the row
# alone, so that PostgreSQL, re-reading a row another call just updated, checks it again
# (READ COMMITTED's re-check of the WHERE sees the row's new version, not other tables').
_THIS_DAY = case((EXTENSION.c.spent_day_of == bindparam("day"), EXTENSION.c.spent_day),
                 else_=0)
_THIS_MONTH = case((EXTENSION.c.spent_month_of == bindparam("month"), EXTENSION.c.spent_month),
                   else_=0)
_RESERVE_CAPPED = (
    update(EXTENSION)
    .where(EXTENSION.c.id == bindparam("extension_id"),
           bindparam("amount", type_=Money()) <= FUNDS,
           _THIS_DAY + EXTENSION.c.reserved + bindparam("amount", type_=Money())
           <= bindparam("day_cap", type_=Money()),
           _THIS_MONTH + EXTENSION.c.reserved + bindparam("amount", type_=Money())
           <= bindparam("month_cap", type_=Money()))
    .values(reserved=EXTENSION.c.reserved + bindparam("amount", type_=Money()))
)
# A period with no cap is checked against more than any amount can be (money.MAX_AMOUNT).
_UNCAPPED = Decimal(10) ** 13
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


@dataclass(frozen=True, slots=True)
class PeriodCaps:
    """The day's and the month's caps a hold must stay within (None: no such cap), and
    which day and month they are ("YYYY-MM-DD", "YYYY-MM", the PBX's)."""

    day: str
    daily: Decimal | None
    month: str
    monthly: Decimal | None


def take_hold(session: Session, *, extension_id: int | None, amount: Decimal,
              caps: PeriodCaps | None = None, **row: object) -> int | None:
    """Reserve `amount` of the extension's funds - only while they (and the period `caps`)
    cover it, in one conditional UPDATE - and write the hold's row (`row`: its columns),
    HELD; the hold's id, or None when they did not cover it. A zero amount reserves
    nothing."""
    if extension_id is not None and amount:
        if caps is None:
            reserved = _fast.execute(session, _RESERVE,
                                     {"extension_id": extension_id, "amount": amount})
        else:
            reserved = _fast.execute(session, _RESERVE_CAPPED, {
                "extension_id": extension_id, "amount": amount, "day": caps.day,
                "month": caps.month,
                "day_cap": _UNCAPPED if caps.daily is None else caps.daily,
                "month_cap": _UNCAPPED if caps.monthly is None else caps.monthly})
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
