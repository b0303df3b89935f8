"""The webhook outbox's writes: an event written in the transaction of the change it tells of
(its delivery state is storage/outbox_repo.py's)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.orm import Session

from coobill.storage import _fast
from coobill.storage.ledger_repo.base import EVENT

_NEW_EVENT = insert(EVENT)


def add_event(session: Session, *, key: str, kind: str, extension: str, payload: str,
              at: datetime) -> None:
    """Write one event to the outbox, pending, in the transaction of the change it tells of
    (storage/outbox_repo.py reads and marks it for delivery)."""
    _fast.execute(session, _NEW_EVENT, {
        "key": key, "kind": kind, "extension": extension, "payload": payload,
        "created_at": at, "state": "pending", "attempts": 0, "next_attempt_at": at,
        "delivered_to": "", "last_error": "", "delivered_at": None,
    })
