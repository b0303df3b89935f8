"""Logged-in portal sessions, kept on the server so that they can end before their cookie does.

A session is good while its row exists and has not expired; the cookie that names it also
carries the user's credential at login, which the portal compares with the current one
(web/auth.py), so a new password ends every session made before it. Logout deletes the row;
a password change deletes the user's other rows (end_others), and a session found with a
stale credential is deleted when it is next shown; removing a user deletes theirs (ON DELETE
CASCADE). Expired rows are pruned whenever a session begins, so the table holds at most the
sessions begun in the last 12 hours.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select

from coobill.services.context import BillingContext
from coobill.storage.tables import PortalSession

LIFETIME = timedelta(hours=12)


def _utc(now: datetime) -> datetime:
    # Wall-clock time, as the cookie's own age is (web/sessions.py), not the billing clock;
    # stored naive, in UTC.
    return now.astimezone(UTC).replace(tzinfo=None)


async def begin(ctx: BillingContext, user_id: int, now: datetime) -> str:
    """A new session for the user, begun `now` (an aware instant); its id (for the cookie)."""
    when = _utc(now)
    session_id = secrets.token_urlsafe(32)
    async with ctx.uow() as uow:
        await uow.session.execute(delete(PortalSession).where(PortalSession.expires_at <= when))
        uow.session.add(PortalSession(id=session_id, user_id=user_id, created_at=when,
                                      expires_at=when + LIFETIME))
        await uow.commit()
    return session_id


async def is_live(ctx: BillingContext, session_id: str, user_id: int, now: datetime) -> bool:
    """Whether the session is still good for this user at `now` (an aware instant)."""
    if not session_id:
        return False
    async with ctx.uow.read() as uow:
        row = (await uow.session.execute(
            select(PortalSession.user_id, PortalSession.expires_at)
            .where(PortalSession.id == session_id))).first()
    return row is not None and row.user_id == user_id and row.expires_at > _utc(now)


async def end(ctx: BillingContext, session_id: str) -> None:
    """Logout: the session's cookie, wherever a copy of it is, no longer logs anyone in."""
    if not session_id:
        return
    async with ctx.uow() as uow:
        await uow.session.execute(delete(PortalSession).where(PortalSession.id == session_id))
        await uow.commit()


async def end_others(ctx: BillingContext, user_id: int, keep: str = "") -> None:
    """A password change: every session of the user ends but `keep` (the one changing it)."""
    async with ctx.uow() as uow:
        await uow.session.execute(delete(PortalSession).where(
            PortalSession.user_id == user_id, PortalSession.id != keep))
        await uow.commit()
