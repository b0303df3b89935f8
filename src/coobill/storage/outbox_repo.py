"""The webhook outbox's delivery state: which events are due, and what became of each attempt.

Events are written by the ledger repository (`ledger_repo.add_event`), in the transaction of
the change they tell of; this module is the daemon's side (daemon/webhooks.py through
services/outbox.py) and the listings of `coobill webhooks` and the portal. The marks are sync
operations for a unit of work of `UnitOfWorkFactory.run` (on SQLite they queue on the ledger
thread like every writer, instead of contending for the write lock); the reads are async, on a
read unit of work.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from coobill.storage.tables import WebhookEvent

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
STATES = (PENDING, DELIVERED, FAILED)

_UNDELIVERED = WebhookEvent.state.in_((PENDING, FAILED))


async def due_heads(session: AsyncSession, *, now: datetime, latest: datetime,
                    limit: int | None) -> list[Row[Any]]:
    """Of each extension its oldest undelivered event (pending or failed: the only one of its
    extension that may be sent, so that each extension's events arrive in order), when it
    is pending and due: its next attempt at or before `now`, or after `latest` (scheduled
    before the clock stepped back). Oldest first, at most `limit`; plain rows (the sender
    reads them once and lets them go: no ORM objects to build)."""
    firsts = (select(func.min(WebhookEvent.id)).where(_UNDELIVERED)
              .group_by(WebhookEvent.extension).scalar_subquery())
    query = (select(*WebhookEvent.__table__.c)
             .where(WebhookEvent.id.in_(firsts), WebhookEvent.state == PENDING,
                    or_(WebhookEvent.next_attempt_at <= now,
                        WebhookEvent.next_attempt_at > latest))
             .order_by(WebhookEvent.id).limit(limit))
    return list(await session.execute(query))


async def events(session: AsyncSession, *, state: str | None, extension: str | None,
                 limit: int) -> list[WebhookEvent]:
    """Events newest first, filtered."""
    query = select(WebhookEvent).order_by(WebhookEvent.id.desc()).limit(limit)
    if state is not None:
        query = query.where(WebhookEvent.state == state)
    if extension is not None:
        query = query.where(WebhookEvent.extension == extension)
    return list((await session.execute(query)).scalars())


async def counts(session: AsyncSession) -> dict[str, int]:
    """How many events are in each state."""
    rows = await session.execute(select(WebhookEvent.state, func.count())
                                 .group_by(WebhookEvent.state))
    return {state: int(n) for state, n in rows.tuples()}


def mark_delivered(session: Session, event_id: int, *, delivered_to: str, at: datetime) -> None:
    session.execute(update(WebhookEvent).where(WebhookEvent.id == event_id, _UNDELIVERED).values(
        state=DELIVERED, delivered_to=delivered_to, delivered_at=at, last_error="",
        attempts=WebhookEvent.attempts + 1))


def mark_failed_attempt(session: Session, event_id: int, *, delivered_to: str, error: str,
                        next_attempt_at: datetime, give_up_after: int) -> None:
    """One more failed attempt; FAILED once `give_up_after` attempts failed (0: never)."""
    attempts = WebhookEvent.attempts + 1
    state = case((attempts >= give_up_after, FAILED), else_=PENDING) if give_up_after else PENDING
    session.execute(update(WebhookEvent).where(WebhookEvent.id == event_id,
                                               WebhookEvent.state == PENDING).values(
        attempts=attempts, state=state, delivered_to=delivered_to, last_error=error[:255],
        next_attempt_at=next_attempt_at))


def retry(session: Session, ids: Sequence[int] | None, *, at: datetime) -> list[int]:
    """Make failed events (the ones of `ids`, or all when None) and pending ones of `ids`
    pending and due now, their attempts counted anew; the ids it moved."""
    query = update(WebhookEvent).where(_UNDELIVERED).values(
        state=PENDING, attempts=0, next_attempt_at=at).returning(WebhookEvent.id)
    if ids is None:
        query = query.where(WebhookEvent.state == FAILED)
    else:
        query = query.where(WebhookEvent.id.in_(list(ids)))
    return sorted(int(i) for i in session.execute(query).scalars())


def states_of(session: Session, ids: Sequence[int]) -> dict[int, str]:
    rows = session.execute(select(WebhookEvent.id, WebhookEvent.state)
                           .where(WebhookEvent.id.in_(list(ids))))
    return {int(i): s for i, s in rows.tuples()}


def prune_delivered(session: Session, *, before: datetime) -> int:
    """Delete the events delivered before `before`; how many."""
    done = session.execute(delete(WebhookEvent).where(WebhookEvent.state == DELIVERED,
                                                      WebhookEvent.delivered_at < before))
    return int(done.rowcount or 0)  # type: ignore[attr-defined]
