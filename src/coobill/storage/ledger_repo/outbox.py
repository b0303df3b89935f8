"""The webhook outbox's writes: an event written in the transaction of the change it tells of
(its delivery state is storage/outbox_repo.py's)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from coobill.storage import _fast
from coobill.storage.ledger_repo.base import EVENT, EXTENSION

_NEW_EVENT = insert(EVENT)
_LOCK_EXTENSION = select(EXTENSION.c.id).where(
    EXTENSION.c.number == bindparam("number")).with_for_update()


def add_event(session: Session, *, key: str, kind: str, extension: str, payload: str,
              at: datetime) -> None:
    """Write one event to the outbox, pending, in the transaction of the change it tells of
    (storage/outbox_repo.py reads and marks it for delivery).

    The sender sends an extension's oldest undelivered event first, by id. On PostgreSQL an
    id is taken at the INSERT and seen at the COMMIT: two transactions writing events of one
    extension must do both in the same order, or the later event is seen (and sent) alone
    first. Holding the extension's row from before the INSERT to the commit makes them (a
    debit or a recharge holds it already; a call settled for nothing would not). SQLite has
    one writer at a time."""
    if session.get_bind().dialect.name == "postgresql":
        _fast.execute(session, _LOCK_EXTENSION, {"number": extension})
    _fast.execute(session, _NEW_EVENT, {
        "key": key, "kind": kind, "extension": extension, "payload": payload,
        "created_at": at, "state": "pending", "attempts": 0, "next_attempt_at": at,
        "delivered_to": "", "last_error": "", "delivered_at": None,
    })
