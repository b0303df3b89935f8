"""Recharge records: listed a page at a time, exported in batches."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, or_, select

from coobill.services.context import BillingContext
from coobill.services.reports.period import EXPORT_BATCH, Period, keyset, within
from coobill.storage.tables import Extension, Recharge


@dataclass(frozen=True, slots=True)
class RechargeRecord:
    time: datetime
    extension: str
    name: str
    balance_before: Decimal
    amount: Decimal
    balance_after: Decimal
    who: str
    kind: str = "recharge"  # or "fee": a recurring fee charged (services/fees.py)


def _recharges(period: Period, keyword: str | None) -> Select[Any]:
    """The recharges wanted, from the recharge table alone: the keyword picks extensions
    first (a small table), so counting and paging never join a million rows."""
    query = within(select(Recharge.id), Recharge.created_at, period)
    if keyword:
        # icontains: LIKE is case-sensitive on PostgreSQL but not on SQLite; wildcards literal.
        word = keyword.strip()
        query = query.where(Recharge.extension_id.in_(
            select(Extension.id).where(or_(Extension.number.icontains(word, autoescape=True),
                                           Extension.name.icontains(word, autoescape=True)))))
    return query


_NEWEST_RECHARGES = (Recharge.created_at.desc(), Recharge.id.desc())


def _with_extension(ids: Select[Any]) -> Select[Any]:
    """The recharges of `ids` (a page of them), newest first, each with its extension."""
    return (select(Recharge, Extension.number, Extension.name)
            .join(Extension, Extension.id == Recharge.extension_id)
            .where(Recharge.id.in_(ids))
            .order_by(*_NEWEST_RECHARGES))


def _recharge_record(row: Any) -> RechargeRecord:
    r, number, name = row
    return RechargeRecord(r.created_at, number, name, r.balance_before, r.amount,
                          r.balance_after, r.who, r.kind)


async def list_recharges(
    ctx: BillingContext, period: Period = Period(), keyword: str | None = None,
    *, offset: int = 0, limit: int | None = None,
) -> tuple[list[RechargeRecord], int]:
    wanted = _recharges(period, keyword)
    async with ctx.uow.read() as uow:
        total = (await uow.session.execute(
            select(func.count()).select_from(wanted.subquery()))).scalar_one()
        page = wanted.order_by(*_NEWEST_RECHARGES).offset(offset)
        if limit is not None:
            page = page.limit(limit)
        rows = (await uow.session.execute(_with_extension(page))).tuples().all()
    return [_recharge_record(row) for row in rows], int(total)


async def iter_recharges(
    ctx: BillingContext, period: Period = Period(), keyword: str | None = None,
    *, batch: int = EXPORT_BATCH,
) -> AsyncIterator[list[RechargeRecord]]:
    """Every recharge `list_recharges` finds, newest first, a batch at a time: a short read
    of its own for each (keyset on time and id), so an export of a million records holds
    neither a million rows in memory nor a read transaction open for its whole length."""
    wanted = _recharges(period, keyword).order_by(*_NEWEST_RECHARGES)
    async for rows in keyset(ctx, wanted, (Recharge.created_at, Recharge.id),
                              lambda row: (row[0].created_at, row[0].id),
                              _with_extension, batch):
        yield [_recharge_record(row) for row in rows]
