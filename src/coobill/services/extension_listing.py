"""The extension list: filtered by lock state, payment, a search word and low funds, paged,
in number order, each with its below-threshold badge."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import func, select

from coobill.errors import BadRequest
from coobill.money import to_units
from coobill.services import low_balance
from coobill.services.context import BillingContext
from coobill.services.extensions import ExtensionView, check_payment
from coobill.services.settings import billing_settings
from coobill.storage.tables import Extension

# The listing's status filter as the portal and the API name it.
LOCKED_STATES = {"": None, "locked": True, "unlocked": False}


def locked_filter(status: str | None) -> bool | None:
    """`locked=` of list_extensions for a status filter: "locked", "unlocked" or "" (any)."""
    if (status or "") not in LOCKED_STATES:
        raise BadRequest("status: must be locked or unlocked", field="status")
    return LOCKED_STATES[status or ""]


def low_filter(balance: str | None) -> bool:
    """`low=` of list_extensions for the balance filter: "low" or "" (any)."""
    if (balance or "") not in ("", "low"):
        raise BadRequest("balance: must be low or empty", field="balance")
    return balance == "low"


async def list_extensions(
    ctx: BillingContext,
    *,
    locked: bool | None = None,
    payment: str | None = None,
    search: str | None = None,
    low: bool = False,
    offset: int = 0,
    limit: int | None = None,
) -> tuple[list[ExtensionView], int]:
    """Extensions in number order, filtered (`low`: only those whose funds at rest are below
    their low-balance threshold); returns (page, total matching)."""
    query = select(Extension)
    if locked is not None:
        query = query.where(Extension.locked == locked)
    if payment is not None:
        query = query.where(Extension.payment == check_payment(payment))
    if search:
        # icontains: LIKE is case-sensitive on PostgreSQL but not on SQLite; wildcards literal.
        word = search.strip()
        query = query.where(
            Extension.number.icontains(word, autoescape=True)
            | Extension.name.icontains(word, autoescape=True)
        )
    async with ctx.uow.read() as uow:
        default = (await billing_settings(uow)).low_balance
        if low:
            threshold = (Extension.low_balance_threshold if default is None else
                         func.coalesce(Extension.low_balance_threshold, to_units(default)))
            query = query.where(threshold.is_not(None),
                                Extension.balance + Extension.credit_limit < threshold)
        total = (
            await uow.session.execute(select(func.count()).select_from(query.subquery()))
        ).scalar_one()
        query = query.order_by(func.length(Extension.number), Extension.number).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        rows = (await uow.session.execute(query)).scalars().all()
        views = [replace(ExtensionView.of(r), below_threshold=low_balance.is_low(
            r.balance, r.credit_limit, r.low_balance_threshold if r.low_balance_threshold
            is not None else default)) for r in rows]
    return views, int(total)
