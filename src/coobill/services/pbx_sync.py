"""What the daemon does with what the PBX says, as service commands: settle an ended channel
until the ledger takes it, and give the PBX's phones a billing row.

The AMI side (ami/, daemon/pbx.py) decides when; these decide what, and how hard to try.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Protocol

from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from coobill.services.commands import SettleChannel, Settlement
from coobill.services.context import BillingContext
from coobill.services.extensions import ensure_extensions
from coobill.services.settlement import settle_channel

__all__ = ["FIRST_RETRY_DELAY", "MAX_RETRY_DELAY", "PbxEndpoint", "add_phones", "settle_until_done"]

log = logging.getLogger("coobill.settlement")

FIRST_RETRY_DELAY = 0.05
MAX_RETRY_DELAY = 5.0


async def settle_until_done(
    ctx: BillingContext, cmd: SettleChannel, *, max_retry_delay: float = MAX_RETRY_DELAY
) -> list[Settlement] | None:
    """Settle, retrying while the ledger is unreachable or locked: a channel that ended is
    settled once it can be, never dropped. None when the ledger refuses this settlement as
    it is (retrying cannot help): said with everything an operator needs to settle it by hand."""
    delay = FIRST_RETRY_DELAY
    while True:
        try:
            return await settle_channel(ctx, cmd)
        except (OperationalError, InterfaceError) as exc:
            # The ledger unreachable or locked: it will come back.
            log.warning("settlement.retry uniqueid=%s error=%s in=%.2fs", cmd.uniqueid,
                        exc.__class__.__name__, delay)
            ctx.progress.settlement_retries.add()
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_retry_delay)
        except SQLAlchemyError as exc:
            log.error("settlement.failed uniqueid=%s error=%r call=%r", cmd.uniqueid, exc, cmd)
            return None


class PbxEndpoint(Protocol):
    """An endpoint as the PBX lists it (ami/endpoints.Endpoint is one)."""

    @property
    def name(self) -> str: ...
    @property
    def caller_name(self) -> str: ...
    @property
    def is_phone(self) -> bool: ...


async def add_phones(ctx: BillingContext, endpoints: Iterable[PbxEndpoint]) -> list[str]:
    """Give each phone endpoint a billing row (billing off); trunks are skipped and existing
    rows are left untouched. Returns the new extension numbers."""
    phones = [(e.name, e.caller_name) for e in endpoints if e.is_phone]
    created = await ensure_extensions(ctx, phones)
    if created:
        log.info("extensions.synced created=%s", ",".join(created))
    return created
