"""Low-balance alerts: a threshold per extension (else the site's default); when an extension's
funds at rest - balance + credit limit, live calls' holds aside (they are counted when they
are settled) - fall below it, one `low_balance` event (the webhook outbox, services/outbox.py)
per crossing; it rearms when they are back at or above it.

The crossing is a conditional update of the extension's `low_balance_since` (set only while
it is unset), in the transaction of the change that made it: of two changes at once only one
crosses, and a rollback takes the event back with the change. It is checked after every
ledger entry (a call's debit, a fee, a recharge, an adjustment) and every change of the
credit limit or the threshold (`check`); the portal's badge and filter, and the gate's
`COOBILL_LOW_BALANCE`, compare the funds and the threshold as they are (`is_low`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from coobill.services import outbox
from coobill.services.context import BillingContext
from coobill.services.settings import BillingSettings, billing_settings
from coobill.storage import ledger_repo

log = logging.getLogger("coobill.low_balance")


def threshold_of(own: Decimal | None, settings: BillingSettings) -> Decimal | None:
    """The extension's threshold, else the site's default (None: no alert)."""
    return own if own is not None else settings.low_balance


def is_low(balance: Decimal, credit_limit: Decimal, threshold: Decimal | None) -> bool:
    """Its funds at rest are below the threshold."""
    return threshold is not None and balance + credit_limit < threshold


def check(ctx: BillingContext, session: Session, extension_id: int, at: datetime, *,
          announce: bool = True, view: Any = None) -> bool:
    """After a change of the extension's balance, credit limit or threshold (in its unit of
    work): record a crossing below the threshold and publish its `low_balance` event, or
    rearm the alert when the funds are back. True when it crossed now. A new extension is
    below from the start, not fallen below: recorded, not announced (`announce=False`).
    `view`: the extension's row as the change left it, when the change returned it
    (ledger.post_entry's Posted.extension), else it is read."""
    row = view if view is not None else ledger_repo.low_balance_view(session, extension_id)
    if row is None:
        return False
    threshold = threshold_of(row.low_balance_threshold, billing_settings(session))
    if not is_low(row.balance, row.credit_limit, threshold):
        if row.low_balance_since is not None:
            ledger_repo.rearm_low_balance(session, extension_id)
        return False
    if row.low_balance_since is not None or not ledger_repo.mark_low_balance(
            session, extension_id, at):
        return False
    if not announce:
        return False
    funds = row.balance + row.credit_limit
    log.info("low_balance.crossed ext=%s funds=%s threshold=%s", row.number, funds, threshold)
    outbox.publish(ctx, session, outbox.LOW_BALANCE, row.number, {
        "balance": row.balance, "credit_limit": row.credit_limit, "funds": funds,
        "threshold": threshold, "at": at})
    return True


__all__ = ["check", "is_low", "threshold_of"]
