"""The life of a hold: the funds one authorization of the gate keeps aside for its call.

                  take (the gate allows a call)
                           |
                           v          shrink (the channel asks the gate again:
                  +----- HELD ----+    what its earlier Dial can have cost at most)
                  |      |   ^    |
   undo           |      |   +----+
   (the gate gave |      | flag (its channel is gone, its end was missed
   up on it)      |      |       and no evidence says what it cost)
                  v      v
               UNDONE  FLAGGED
                         |
       HELD or FLAGGED --+-- settle (the evidence of its Dials: each answered one is a call
                         |   record and a debit at this hold's tariff) -----------> SETTLED
                         +-- release (the evidence shows no Dial of it; or a billing user
                             resolving a flagged hold without charge) ----------> RELEASED

Invariants, kept by doing every move here:
- A hold is OPEN (held, flagged) or CLOSED (settled, released, undone). Only an open hold's
  `amount` is in its extension's `reserved`, so reserved = the sum of its open holds (the
  audit checks it) and is never negative (the database refuses it).
- Every move works on the hold's own row (its id, or the token the gate made for it) with one
  conditional UPDATE ... RETURNING, and moves exactly the funds that row gave up: two movers
  racing for one hold (a late Cdr and a billing user, two daemons) cannot both move it.
- Closed holds stay: they are how a late piece of evidence knows the call was resolved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import bindparam, insert, or_, update
from sqlalchemy.orm import Session

from coobill.storage.fast import execute
from coobill.storage.tables import Extension, Money, Reservation, table

HELD = "held"
FLAGGED = "flagged"
SETTLED = "settled"
RELEASED = "released"
UNDONE = "undone"
OPEN = (HELD, FLAGGED)
CLOSED = (SETTLED, RELEASED, UNDONE)

_extension = table(Extension)
_hold = table(Reservation)
# `state IN (...)` spelled out: the hot paths' statements run without expanding parameters
# (storage/fast.py).
IS_OPEN = or_(_hold.c.state == HELD, _hold.c.state == FLAGGED)

# Funds = balance + credit limit - reserved, in SQL for the conditional hold: the mirror of
# services/funds.py `funds()`, which everything else that shows or decides on funds calls.
FUNDS = _extension.c.balance + _extension.c.credit_limit - _extension.c.reserved

_RESERVE = (
    update(_extension)
    .where(_extension.c.id == bindparam("extension_id"),
           FUNDS >= bindparam("amount", type_=Money()))
    .values(reserved=_extension.c.reserved + bindparam("amount", type_=Money()))
)
_UNRESERVE = (
    update(_extension)
    .where(_extension.c.id == bindparam("extension_id"))
    .values(reserved=_extension.c.reserved - bindparam("amount", type_=Money()))
)
_NEW_HOLD = insert(_hold).returning(_hold.c.id)
_CLOSE = (
    update(_hold)
    .where(_hold.c.id == bindparam("hold_id"), IS_OPEN)
    .values(state=bindparam("state"), note=bindparam("note"), closed_at=bindparam("at"))
    .returning(_hold.c.extension_id, _hold.c.amount)
)
_CLOSE_BY_TOKEN = (
    update(_hold)
    .where(_hold.c.token == bindparam("hold_token"), IS_OPEN)
    .values(state=bindparam("state"), note=bindparam("note"), closed_at=bindparam("at"))
    .returning(_hold.c.id, _hold.c.extension_id, _hold.c.amount)
)
_SHRINK = (
    update(_hold)
    .where(_hold.c.id == bindparam("hold_id"), IS_OPEN,
           _hold.c.amount == bindparam("was", type_=Money()))
    .values(amount=bindparam("amount", type_=Money()))
    .returning(_hold.c.extension_id)
)
_FLAG = (
    update(_hold)
    .where(_hold.c.id == bindparam("hold_id"), _hold.c.state == HELD)
    .values(state=FLAGGED, note=bindparam("note"))
)


@dataclass(frozen=True, slots=True)
class Closed:
    """What closing a hold gave back: the funds it held (None: it was closed already)."""

    hold_id: int
    extension_id: int | None
    amount: Decimal


def take(session: Session, *, extension_id: int | None, amount: Decimal, **row: object) -> int | None:
    """Hold `amount` of the extension's funds for a new authorization and write its row;
    the hold's id, or None when the funds no longer cover it (they moved since they were
    read: read again and decide again). A zero hold (an unbilled call) reserves nothing."""
    if extension_id is not None and amount:
        reserved = execute(session, _RESERVE, {"extension_id": extension_id, "amount": amount})
        if not reserved.rowcount:
            return None
    hold_id = execute(session, _NEW_HOLD, {
        "extension_id": extension_id, "amount": amount, "state": HELD, "note": "",
        "closed_at": None, **row,
    }).scalar_one()
    return int(hold_id)


def close(session: Session, hold_id: int, state: str, *, at: datetime, note: str = "") -> Closed | None:
    """Settle, release or undo an open hold: its funds go back to the extension's funds (a
    settlement debits the cost beside it). None when it was not open any more."""
    assert state in CLOSED
    row = execute(session, _CLOSE, {"hold_id": hold_id, "state": state, "note": note[:255],
                                    "at": at}).first()
    if row is None:
        return None
    _give_back(session, row.extension_id, row.amount)
    return Closed(hold_id, row.extension_id, row.amount)


def undo(session: Session, token: str, *, at: datetime) -> Closed | None:
    """Undo what one authorization wrote, found by the token it was given: the gate told the
    channel something else (its deadline passed). None when that hold is not open."""
    row = execute(session, _CLOSE_BY_TOKEN, {"hold_token": token, "state": UNDONE,
                                             "note": "the gate gave up waiting for it",
                                             "at": at}).first()
    if row is None:
        return None
    _give_back(session, row.extension_id, row.amount)
    return Closed(row.id, row.extension_id, row.amount)


def shrink(session: Session, hold_id: int, *, was: Decimal, to: Decimal) -> Decimal:
    """Lower an open hold from `was` to `to`; what it gave back (0 when it changed meanwhile
    or `to` is not lower)."""
    if to >= was:
        return Decimal(0)
    row = execute(session, _SHRINK, {"hold_id": hold_id, "was": was, "amount": to}).first()
    if row is None:
        return Decimal(0)
    _give_back(session, row.extension_id, was - to)
    return was - to


def flag(session: Session, hold_id: int, note: str) -> bool:
    """Mark a held hold for a billing user: its funds stay held until it is resolved."""
    return bool(execute(session, _FLAG, {"hold_id": hold_id, "note": note[:255]}).rowcount)


def _give_back(session: Session, extension_id: int | None, amount: Decimal) -> None:
    if extension_id is not None and amount:
        execute(session, _UNRESERVE, {"extension_id": extension_id, "amount": amount})
