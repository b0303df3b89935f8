"""The ledger repository: every statement on the ledger's money - extensions' funds, holds, call
records, ledger entries and their chain head, the settings the hot paths read - behind one
named operation each. The services say what moves (services/holds.py, ledger.py, gate.py,
settlement.py, reservations.py); this module is the only one that says how, in SQL.

One way to run them: inside a unit of work of `UnitOfWorkFactory.run(work)` (storage/uow.py),
`work` a plain function of the sync Session that each operation takes first. Reads that lead
to no write (listing holds, a settled call's recorded cost) are `async` operations on an
`async with uow.read()` unit of work's session.

The sync operations run their statements through storage/_fast.py, private to this module: on
SQLite's ledger thread it executes them straight on the stdlib driver, some 30 µs of Python
less per statement than SQLAlchemy's own execution. The gate runs four or five statements per
authorization and is measured in hundreds of microseconds (docs/benchmarks.md, "Gate"), so
that saving is a large share of its latency; elsewhere (PostgreSQL) it is plain
`Connection.execute`. The statements are built once, at import, so each is compiled once.

Every open-state test is spelled `state = 'held' OR state = 'flagged'`: the fast executor
runs no expanding IN.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import String, bindparam, case, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from coobill.storage import _fast
from coobill.storage.tables import (
    Call,
    Extension,
    LedgerEntry,
    LedgerHead,
    Money,
    Reservation,
    Setting,
    WebhookEvent,
    table,
)

T = TypeVar("T")

# A hold's states (services/holds.py tells their life).
HELD = "held"
FLAGGED = "flagged"

_extension = table(Extension)
_hold = table(Reservation)
_call = table(Call)
_entry = table(LedgerEntry)
_head = table(LedgerHead)
_setting = table(Setting)
_event = table(WebhookEvent)

_IS_OPEN = or_(_hold.c.state == HELD, _hold.c.state == FLAGGED)
# Funds = balance + credit limit - reserved (services/funds.py `funds` says it in Python): in
# SQL here, so that a hold is taken only while the funds cover it, in one statement.
_FUNDS = _extension.c.balance + _extension.c.credit_limit - _extension.c.reserved


def per_transaction(session: Session, key: str, build: Callable[[Session], T]) -> T:
    """`build(session)`, computed once per transaction of `session`."""
    return _fast.per_transaction(session, key, build)


# -- extensions --------------------------------------------------------------------------------

_GATE_VIEW = select(
    _extension.c.id, _extension.c.number, _extension.c.billing_enabled, _extension.c.locked,
    _extension.c.balance, _extension.c.credit_limit, _extension.c.reserved,
    _extension.c.cap_daily, _extension.c.cap_monthly, _extension.c.max_call_cost,
    _extension.c.max_price_minute, _extension.c.spent_day, _extension.c.spent_day_of,
    _extension.c.spent_month, _extension.c.spent_month_of, _extension.c.low_balance_threshold,
).where(_extension.c.number == bindparam("number"))
_BILLING_OF = select(
    _extension.c.id, _extension.c.billing_enabled, _extension.c.balance
).where(_extension.c.number == bindparam("number"))
_IS_EXTENSION = select(_extension.c.id).where(_extension.c.number == bindparam("number"))


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
    _extension.c.number, _extension.c.balance, _extension.c.credit_limit,
    _extension.c.low_balance_threshold, _extension.c.low_balance_since,
).where(_extension.c.id == bindparam("extension_id"))
_MARK_LOW = (
    update(_extension)
    .where(_extension.c.id == bindparam("extension_id"), _extension.c.low_balance_since.is_(None))
    .values(low_balance_since=bindparam("since"))
)
_REARM_LOW = (
    update(_extension)
    .where(_extension.c.id == bindparam("extension_id"),
           _extension.c.low_balance_since.is_not(None))
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


# -- holds -------------------------------------------------------------------------------------

_RESERVE = (
    update(_extension)
    .where(_extension.c.id == bindparam("extension_id"),
           bindparam("amount", type_=Money()) <= _FUNDS)
    .values(reserved=_extension.c.reserved + bindparam("amount", type_=Money()))
)
# The same, also only while the day's and the month's caps cover it: what the period's calls
# were debited (its counter, if it is this period's) + every open hold + this one. On the row
# alone, so that PostgreSQL, re-reading a row another call just updated, checks it again
# (READ COMMITTED's re-check of the WHERE sees the row's new version, not other tables').
_THIS_DAY = case((_extension.c.spent_day_of == bindparam("day"), _extension.c.spent_day),
                 else_=0)
_THIS_MONTH = case((_extension.c.spent_month_of == bindparam("month"), _extension.c.spent_month),
                   else_=0)
_RESERVE_CAPPED = (
    update(_extension)
    .where(_extension.c.id == bindparam("extension_id"),
           bindparam("amount", type_=Money()) <= _FUNDS,
           _THIS_DAY + _extension.c.reserved + bindparam("amount", type_=Money())
           <= bindparam("day_cap", type_=Money()),
           _THIS_MONTH + _extension.c.reserved + bindparam("amount", type_=Money())
           <= bindparam("month_cap", type_=Money()))
    .values(reserved=_extension.c.reserved + bindparam("amount", type_=Money()))
)
# A period with no cap is checked against more than any amount can be (money.MAX_AMOUNT).
_UNCAPPED = Decimal(10) ** 13
_UNRESERVE = (
    update(_extension)
    .where(_extension.c.id == bindparam("extension_id"))
    .values(reserved=_extension.c.reserved - bindparam("amount", type_=Money()))
)
_NEW_HOLD = insert(_hold).returning(_hold.c.id)
_CLOSE = (
    update(_hold)
    .where(_hold.c.id == bindparam("hold_id"), _IS_OPEN)
    .values(state=bindparam("state"), note=bindparam("note"), closed_at=bindparam("at"))
    .returning(_hold.c.extension_id, _hold.c.amount)
)
_CLOSE_BY_TOKEN = (
    update(_hold)
    .where(_hold.c.token == bindparam("hold_token"), _IS_OPEN)
    .values(state=bindparam("state"), note=bindparam("note"), closed_at=bindparam("at"))
    .returning(_hold.c.id, _hold.c.extension_id, _hold.c.amount)
)
_SHRINK = (
    update(_hold)
    .where(_hold.c.id == bindparam("hold_id"), _IS_OPEN,
           _hold.c.amount == bindparam("was", type_=Money()))
    .values(amount=bindparam("amount", type_=Money()))
    .returning(_hold.c.extension_id)
)
_FLAG = (
    update(_hold)
    .where(_hold.c.id == bindparam("hold_id"), _hold.c.state == HELD)
    .values(state=FLAGGED, note=bindparam("note"))
)
_OPEN_HOLD_OF_CHANNEL = select(
    _hold.c.id, _hold.c.amount, _hold.c.tariff, _hold.c.limit_seconds,
).where(
    _hold.c.token == bindparam("token"), _hold.c.uniqueid == bindparam("uniqueid"),
    _hold.c.pbx == bindparam("pbx"), _IS_OPEN,
)
_CHANNEL_HOLDS = (
    select(_hold.c.id, _hold.c.token, _hold.c.extension_id, _hold.c.extension_number,
           _hold.c.number, _hold.c.amount, _hold.c.billed, _hold.c.limit_seconds,
           _hold.c.tariff, _hold.c.rate_id, _hold.c.rate_label, _hold.c.state)
    .where(_hold.c.pbx == bindparam("pbx"), _hold.c.uniqueid == bindparam("uniqueid"))
    .order_by(_hold.c.id)
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


# -- call records ------------------------------------------------------------------------------

_RECORDED_LEGS = select(_call.c.leg, _call.c.cost).where(
    _call.c.pbx == bindparam("pbx"), _call.c.uniqueid == bindparam("uniqueid"))
# A record from before migration 0004 knows no PBX nor leg: it is the channel's, settled.
_SETTLED_BEFORE_THE_UPGRADE = select(_call.c.id, _call.c.cost).where(
    _call.c.pbx == "", _call.c.uniqueid == bindparam("uniqueid")).limit(1)
_RECORD_CALL = insert(_call).returning(_call.c.id)


def recorded_legs(session: Session, pbx: str, uniqueid: str) -> list[Any]:
    """The legs (leg, cost) of a channel already recorded."""
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


# -- ledger entries ----------------------------------------------------------------------------

_MOVE_BALANCE = (
    update(_extension)
    .where(_extension.c.id == bindparam("extension_id"))
    .values(balance=_extension.c.balance + bindparam("amount", type_=Money()))
    .returning(_extension.c.balance, _extension.c.number)
)
_NEW_ENTRY = insert(_entry).returning(_entry.c.id)
_READ_HEAD = (
    select(_head.c.last_entry_id, _head.c.last_mac, _head.c.entries)
    .where(_head.c.id == 1)
    .with_for_update()
)
_NEW_HEAD = insert(_head)
_MOVE_HEAD = (
    update(_head)
    .where(_head.c.id == 1)
    .values(last_entry_id=bindparam("last_entry_id"), last_mac=bindparam("last_mac"),
            entries=bindparam("entries"), mac=bindparam("head_mac"))
)


# A call's debit also counts as its day's and its month's spending (services/caps.py): added
# to the counter when it is that period's, starting it when the counter is of an earlier
# one, left alone when the call is of a period already past (its counter is gone).
def _counted(spent: Any, of: Any, period: str) -> Any:
    new = bindparam(period, type_=String())
    return case((of == new, spent + bindparam("spent", type_=Money())),
                (of < new, bindparam("spent", type_=Money())), else_=spent)


def _period(of: Any, period: str) -> Any:
    new = bindparam(period, type_=String())
    return case((of < new, new), else_=of)


_MOVE_BALANCE_SPENT = (
    update(_extension)
    .where(_extension.c.id == bindparam("extension_id"))
    .values(balance=_extension.c.balance + bindparam("amount", type_=Money()),
            spent_day=_counted(_extension.c.spent_day, _extension.c.spent_day_of, "day"),
            spent_day_of=_period(_extension.c.spent_day_of, "day"),
            spent_month=_counted(_extension.c.spent_month, _extension.c.spent_month_of, "month"),
            spent_month_of=_period(_extension.c.spent_month_of, "month"))
    .returning(_extension.c.balance, _extension.c.number)
)


def move_balance(session: Session, extension_id: int, amount: Decimal,
                 spent_on: tuple[str, str] | None = None) -> Any:
    """Add `amount` (signed) to a balance in one UPDATE ... RETURNING (no read-modify-write):
    the balance after and the extension's number; None for an unknown extension. With
    `spent_on` (day, month) it is a call's debit, counted as that day's and month's
    spending."""
    if spent_on is None:
        return _fast.execute(session, _MOVE_BALANCE,
                             {"extension_id": extension_id, "amount": amount}).first()
    return _fast.execute(session, _MOVE_BALANCE_SPENT, {
        "extension_id": extension_id, "amount": amount, "spent": -amount,
        "day": spent_on[0], "month": spent_on[1]}).first()


_HAS_ENTRY = select(_entry.c.id).where(_entry.c.kind == bindparam("kind"),
                                       _entry.c.reference == bindparam("reference"))
_REFERENCES_FROM = select(_entry.c.reference).where(
    _entry.c.kind == bindparam("kind"), _entry.c.reference >= bindparam("low"),
    _entry.c.reference < bindparam("high"))


def has_entry(session: Session, kind: str, reference: str) -> bool:
    """An entry of this kind with this reference exists ((kind, reference) is unique)."""
    return _fast.execute(session, _HAS_ENTRY, {"kind": kind, "reference": reference}
                         ).first() is not None


async def references_starting(session: AsyncSession, kind: str, prefix: str) -> set[str]:
    """The references of the entries of `kind` that start with `prefix` (a range on the
    unique (kind, reference) index, not a LIKE)."""
    high = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    rows = await session.execute(_REFERENCES_FROM, {"kind": kind, "low": prefix, "high": high})
    return {r for (r,) in rows.tuples()}


def chain_head(session: Session) -> Any:
    """The ledger's head (last_entry_id, last_mac, entries), locked for this transaction
    (FOR UPDATE), which keeps entry ids in chain order; None before migration 0004 made it."""
    return _fast.execute(session, _READ_HEAD, {}).first()


def append_entry(session: Session, **row: object) -> int:
    """Write one ledger entry (`row`: its columns, its MAC included); its id."""
    return int(_fast.execute(session, _NEW_ENTRY, row).scalar_one())


def move_head(session: Session, *, exists: bool, last_entry_id: int, last_mac: str,
              entries: int, mac: str) -> None:
    """Point the head at the new last entry (making the head if `exists` is False)."""
    if exists:
        _fast.execute(session, _MOVE_HEAD, {"last_entry_id": last_entry_id,
                                            "last_mac": last_mac, "entries": entries,
                                            "head_mac": mac})
    else:
        _fast.execute(session, _NEW_HEAD, {"id": 1, "last_entry_id": last_entry_id,
                                           "last_mac": last_mac, "entries": entries,
                                           "mac": mac})


# -- the webhook outbox ------------------------------------------------------------------------

_NEW_EVENT = insert(_event)


def add_event(session: Session, *, key: str, kind: str, extension: str, payload: str,
              at: datetime) -> None:
    """Write one event to the outbox, pending, in the transaction of the change it tells of
    (storage/outbox_repo.py reads and marks it for delivery)."""
    _fast.execute(session, _NEW_EVENT, {
        "key": key, "kind": kind, "extension": extension, "payload": payload,
        "created_at": at, "state": "pending", "attempts": 0, "next_attempt_at": at,
        "delivered_to": "", "last_error": "", "delivered_at": None,
    })


# -- settings ----------------------------------------------------------------------------------

_ALL_SETTINGS = select(_setting.c.key, _setting.c.value)


def settings_rows(session: Session) -> dict[str, str]:
    """Every setting kept in the ledger, key to value."""
    return dict(_fast.execute(session, _ALL_SETTINGS, {}).all())


async def settings_rows_of(session: AsyncSession) -> dict[str, str]:
    """`settings_rows` on an async unit of work's session."""
    return dict((await session.execute(_ALL_SETTINGS)).tuples().all())
