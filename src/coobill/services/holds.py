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

from sqlalchemy.orm import Session

from coobill.storage import ledger_repo

HELD = ledger_repo.HELD
FLAGGED = ledger_repo.FLAGGED
SETTLED = "settled"
RELEASED = "released"
UNDONE = "undone"
OPEN = (HELD, FLAGGED)
CLOSED = (SETTLED, RELEASED, UNDONE)


@dataclass(frozen=True, slots=True)
class Closed:
    """What closing a hold gave back: the funds it held (None: it was closed already)."""

    hold_id: int
    extension_id: int | None
    amount: Decimal


PeriodCaps = ledger_repo.PeriodCaps


def take(session: Session, *, extension_id: int | None, amount: Decimal,
         caps: PeriodCaps | None = None, **row: object) -> int | None:
    """Hold `amount` of the extension's funds for a new authorization and write its row;
    the hold's id, or None when the funds (or the day's and month's `caps`: what the
    period's calls spent and every open hold, services/caps.py) no longer cover it (they
    moved since they were read: read again and decide again). A zero hold (an unbilled call)
    reserves nothing."""
    return ledger_repo.take_hold(session, extension_id=extension_id, amount=amount, caps=caps,
                                 **row)


def close(
    session: Session, hold_id: int, state: str, *, at: datetime, note: str = ""
) -> Closed | None:
    """Settle, release or undo an open hold: its funds go back to the extension's funds (a
    settlement debits the cost beside it). None when it was not open any more."""
    assert state in CLOSED
    closed = ledger_repo.close_hold(session, hold_id, state, at=at, note=note[:255])
    if closed is None:
        return None
    return Closed(hold_id, *closed)


def undo(session: Session, token: str, *, at: datetime) -> Closed | None:
    """Undo what one authorization wrote, found by the token it was given: the gate told the
    channel something else (its deadline passed). None when that hold is not open."""
    closed = ledger_repo.close_hold_by_token(
        session, token, UNDONE, at=at, note="the gate gave up waiting for it"
    )
    return Closed(*closed) if closed is not None else None


def shrink(session: Session, hold_id: int, *, was: Decimal, to: Decimal) -> Decimal:
    """Lower an open hold from `was` to `to`; what it gave back (0 when it changed meanwhile
    or `to` is not lower)."""
    if to >= was:
        return Decimal(0)
    if not ledger_repo.shrink_hold(session, hold_id, was=was, to=to):
        return Decimal(0)
    return was - to


def flag(session: Session, hold_id: int, note: str) -> bool:
    """Mark a held hold for a billing user: its funds stay held until it is resolved."""
    return ledger_repo.flag_hold(session, hold_id, note[:255])
