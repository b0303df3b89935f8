"""What the ledger repository's operations share: the tables as Core tables, a hold's open
states, the funds formula in SQL, and a value kept for one transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import or_
from sqlalchemy.orm import Session

from coobill.storage import _fast
from coobill.storage.tables import (
    Call,
    Extension,
    LedgerEntry,
    LedgerHead,
    Reservation,
    Setting,
    WebhookEvent,
    table,
)

T = TypeVar("T")

# A hold's states (services/holds.py tells their life).
HELD = "held"
FLAGGED = "flagged"

EXTENSION = table(Extension)
HOLD = table(Reservation)
CALL = table(Call)
ENTRY = table(LedgerEntry)
HEAD = table(LedgerHead)
SETTING = table(Setting)
EVENT = table(WebhookEvent)

# Every open-state test is spelled `state = 'held' OR state = 'flagged'`: the fast executor
# runs no expanding IN.
IS_OPEN = or_(HOLD.c.state == HELD, HOLD.c.state == FLAGGED)
# Funds = balance + credit limit - reserved (services/funds.py `funds` says it in Python): in
# SQL here, so that a hold is taken only while the funds cover it, in one statement.
FUNDS = EXTENSION.c.balance + EXTENSION.c.credit_limit - EXTENSION.c.reserved


def per_transaction(session: Session, key: str, build: Callable[[Session], T]) -> T:
    """`build(session)`, computed once per transaction of `session`."""
    return _fast.per_transaction(session, key, build)
