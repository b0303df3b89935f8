"""The webhook outbox: events for the operator's own systems, written in the transaction of the
change they tell of, so that an event exists exactly when its change does.

    change (a settlement, a recharge ...) --same transaction--> webhook_event (pending)
                                                                     |
    daemon/webhooks.py: the oldest undelivered event of each extension, when due
        --POST, signed--> every URL of [webhooks] urls
        all answered 2xx: delivered | else: pending again after a backoff (failed after
        webhooks.max_attempts, until `coobill webhooks retry`)

Guarantees: at least once (an event is marked delivered only after every URL answered 2xx; a
daemon killed between the two sends it again, with the same idempotency key), in order per
extension (an extension's later events wait while an earlier one is undelivered), surviving
restarts (the state is in the ledger). Nothing here is on the gate's path: publishing is one
INSERT in the transaction already open, and only when webhooks are configured.

Each request carries `Idempotency-Key` (the event's key, also its JSON `id`),
`X-Coobill-Event` (its kind), `X-Coobill-Timestamp` (Unix seconds) and
`X-Coobill-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed by
webhooks.secret>`; `signature` below is the one definition, docs/webhooks.md shows a receiver
checking it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Row
from sqlalchemy.orm import Session

from coobill.errors import BadRequest
from coobill.services.context import BillingContext
from coobill.storage import ledger_repo, outbox_repo
from coobill.storage.tables import WebhookEvent

CALL_SETTLED = "call.settled"
RECHARGE = "recharge"
ADJUSTMENT = "adjustment"
FEE = "fee"
LOW_BALANCE = "low_balance"
HOLD_FLAGGED = "hold.flagged"
EXTENSION_LOCKED = "extension.locked"

PENDING, DELIVERED, FAILED = outbox_repo.PENDING, outbox_repo.DELIVERED, outbox_repo.FAILED
STATES = outbox_repo.STATES


def enabled(ctx: BillingContext, kind: str) -> bool:
    hooks = ctx.config.webhooks
    return bool(hooks.urls) and (not hooks.events or kind in hooks.events)


def publish(ctx: BillingContext, session: Session, kind: str, extension: str,
            data: Mapping[str, Any]) -> None:
    """Write one event in the transaction of `session` (nothing when webhooks are off or
    this kind is not wanted)."""
    if not enabled(ctx, kind):
        return
    at = _utc(ctx.clock())
    key = uuid.uuid4().hex
    payload = json.dumps({"id": key, "type": kind, "created_at": at.isoformat() + "Z",
                          "extension": extension, "data": dict(data)},
                         default=_json_value, sort_keys=True, separators=(",", ":"))
    ledger_repo.add_event(session, key=key, kind=kind, extension=extension[:32],
                          payload=payload, at=at)


def _json_value(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value.quantize(Decimal("0.0001")))
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not an event field")


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Coobill-Signature header's value for a request body sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


@dataclass(frozen=True, slots=True)
class EventView:
    id: int
    key: str
    kind: str
    extension: str
    created_at: datetime
    state: str
    attempts: int
    next_attempt_at: datetime
    delivered_to: tuple[str, ...]
    last_error: str
    delivered_at: datetime | None
    payload: str

    @classmethod
    def of(cls, row: WebhookEvent | Row[Any]) -> EventView:
        """Of an ORM row or a plain one of webhook_event's columns."""
        return cls(row.id, row.key, row.kind, row.extension, row.created_at, row.state,
                   row.attempts, row.next_attempt_at,
                   tuple(u for u in row.delivered_to.split("\n") if u), row.last_error,
                   row.delivered_at, row.payload)


# -- delivery (daemon/webhooks.py) -------------------------------------------------------------

async def due(ctx: BillingContext, *, limit: int | None = None) -> list[EventView]:
    """The events to send now: of each extension, its oldest undelivered one, if it is pending
    and its next attempt is due (a failed one holds its extension's later events back);
    oldest first, at most `limit`."""
    now = _utc(ctx.clock())
    # An attempt is never further off than the longest backoff: one that is was scheduled
    # before the clock stepped back (a new event, due when written, would wait the step out,
    # and its extension's later events behind it).
    latest = now + timedelta(seconds=ctx.config.webhooks.max_backoff_seconds)
    async with ctx.uow.read() as uow:
        rows = await outbox_repo.due_heads(uow.session, now=now, latest=latest, limit=limit)
    return [EventView.of(r) for r in rows]


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one attempt to send `event` came to: the URLs that have it now, and what went
    wrong (None: every configured URL took it - it is delivered)."""
    event: EventView
    took: tuple[str, ...]
    error: str | None = None


async def record(ctx: BillingContext, attempts: Sequence[Attempt]) -> None:
    """Write what several attempts came to, in one transaction: delivered, or pending again
    after a backoff of 1, 2, 4 ... seconds (up to webhooks.max_backoff_seconds)."""
    if not attempts:
        return
    hooks = ctx.config.webhooks
    at = _utc(ctx.clock())

    def work(session: Session) -> None:
        for attempt in attempts:
            urls = "\n".join(attempt.took)
            if attempt.error is None:
                outbox_repo.mark_delivered(session, attempt.event.id, delivered_to=urls, at=at)
                continue
            delay = min(2.0 ** attempt.event.attempts, hooks.max_backoff_seconds)
            outbox_repo.mark_failed_attempt(
                session, attempt.event.id, delivered_to=urls, error=attempt.error,
                next_attempt_at=at + timedelta(seconds=delay), give_up_after=hooks.max_attempts)

    await ctx.uow.run(work)


async def delivered(ctx: BillingContext, event: EventView, urls: Sequence[str]) -> None:
    await record(ctx, [Attempt(event, tuple(urls))])


async def attempt_failed(ctx: BillingContext, event: EventView, urls: Sequence[str],
                         error: str) -> None:
    """Schedule the next attempt after 1, 2, 4 ... seconds, up to webhooks.max_backoff_seconds."""
    await record(ctx, [Attempt(event, tuple(urls), error)])


async def prune(ctx: BillingContext) -> int:
    """Delete events delivered longer ago than webhooks.keep_delivered_days."""
    days = ctx.config.webhooks.keep_delivered_days
    if not days:
        return 0
    before = _utc(ctx.clock()) - timedelta(days=days)
    return await ctx.uow.run(lambda session: outbox_repo.prune_delivered(session, before=before))


# -- what a billing user sees and does (`coobill webhooks`, the portal) ------------------------

def check_state(state: str | None) -> str | None:
    if state in (None, ""):
        return None
    if state not in outbox_repo.STATES:
        raise BadRequest(f"state: must be one of {', '.join(outbox_repo.STATES)}", field="state")
    return state


async def list_events(ctx: BillingContext, *, state: str | None = None,
                      extension: str | None = None, limit: int = 100) -> list[EventView]:
    """Events newest first, with their delivery state."""
    state = check_state(state)
    async with ctx.uow.read() as uow:
        rows = await outbox_repo.events(uow.session, state=state, extension=extension or None,
                                        limit=limit)
    return [EventView.of(r) for r in rows]


async def state_counts(ctx: BillingContext) -> dict[str, int]:
    async with ctx.uow.read() as uow:
        found = await outbox_repo.counts(uow.session)
    return {state: found.get(state, 0) for state in outbox_repo.STATES}


async def retry(ctx: BillingContext, ids: Sequence[int] | None = None) -> list[int]:
    """Send again now: the given events (failed or pending), or every failed one. An id that
    is delivered or unknown is refused, and nothing is changed."""
    at = _utc(ctx.clock())

    def work(session: Session) -> list[int]:
        if ids is not None:
            known = outbox_repo.states_of(session, ids)
            for event_id in ids:
                if event_id not in known:
                    raise BadRequest(f"event {event_id}: no such webhook event", field="id")
                if known[event_id] == DELIVERED:
                    raise BadRequest(f"event {event_id}: delivered already", field="id")
        return outbox_repo.retry(session, ids, at=at)

    return await ctx.uow.run(work)


def _utc(when: datetime) -> datetime:
    """Naive UTC, as the outbox stores its times."""
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo is not None else when
