"""The settings rows the hot paths read."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from coobill.storage import _fast
from coobill.storage.ledger_repo.base import (
    SETTING,
)

_ALL_SETTINGS = select(SETTING.c.key, SETTING.c.value)


def settings_rows(session: Session) -> dict[str, str]:
    """Every setting kept in the ledger, key to value."""
    return dict(_fast.execute(session, _ALL_SETTINGS, {}).all())


async def settings_rows_of(session: AsyncSession) -> dict[str, str]:
    """`settings_rows` on an async unit of work's session."""
    return dict((await session.execute(_ALL_SETTINGS)).tuples().all())
