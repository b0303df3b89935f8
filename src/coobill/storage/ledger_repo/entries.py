"""Ledger entries: a balance moved, an entry appended, the chain's head moved."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import String, bindparam, case, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from coobill.storage import _fast
from coobill.storage.ledger_repo.base import (
    ENTRY,
    EXTENSION,
    HEAD,
)
from coobill.storage.tables import Money

# What a balance's move returns: the balance after, and what its low-balance check reads
# (services/low_balance.py), so that it need not read the row again.
_MOVED = (EXTENSION.c.balance, EXTENSION.c.number, EXTENSION.c.credit_limit,
          EXTENSION.c.low_balance_threshold, EXTENSION.c.low_balance_since)
_MOVE_BALANCE = (
    update(EXTENSION)
    .where(EXTENSION.c.id == bindparam("extension_id"))
    .values(balance=EXTENSION.c.balance + bindparam("amount", type_=Money()))
    .returning(*_MOVED)
)
_NEW_ENTRY = insert(ENTRY).returning(ENTRY.c.id)
_READ_HEAD = (
    select(HEAD.c.last_entry_id, HEAD.c.last_mac, HEAD.c.entries)
    .where(HEAD.c.id == 1)
    .with_for_update()
)
_NEW_HEAD = insert(HEAD)
_MOVE_HEAD = (
    update(HEAD)
    .where(HEAD.c.id == 1)
    .values(last_entry_id=bindparam("last_entry_id"), last_mac=bindparam("last_mac"),
            entries=bindparam("entries"), mac=bindparam("head_mac"))
)


# A call's debit also counts as its day's and its month's spending (services/caps.py): added
# to the counter when it is that period's, starting it when the counter is of an earlier
# one, left alone when the call is of a period already past (its counter is gone).
def _counted(spent: Any, of: Any, period: str) -> Any:
    new = bindparam(period, type_=String())
    return case((of == new, spent + bindparam("spent", type_=Money())),
                (of < new, bindparam("spent", type_=Money())), else_=spent)


def _period(of: Any, period: str) -> Any:
    new = bindparam(period, type_=String())
    return case((of < new, new), else_=of)


_MOVE_BALANCE_SPENT = (
    update(EXTENSION)
    .where(EXTENSION.c.id == bindparam("extension_id"))
    .values(balance=EXTENSION.c.balance + bindparam("amount", type_=Money()),
            spent_day=_counted(EXTENSION.c.spent_day, EXTENSION.c.spent_day_of, "day"),
            spent_day_of=_period(EXTENSION.c.spent_day_of, "day"),
            spent_month=_counted(EXTENSION.c.spent_month, EXTENSION.c.spent_month_of, "month"),
            spent_month_of=_period(EXTENSION.c.spent_month_of, "month"))
    .returning(*_MOVED)
)


def move_balance(session: Session, extension_id: int, amount: Decimal,
                 spent_on: tuple[str, str] | None = None) -> Any:
    """Add `amount` (signed) to a balance in one UPDATE ... RETURNING (no read-modify-write):
    the balance after, the extension's number, and its credit_limit, low_balance_threshold
    and low_balance_since (a low_balance_view of it); None for an unknown extension. With
    `spent_on` (day, month) it is a call's debit, counted as that day's and month's
    spending."""
    if spent_on is None:
        return _fast.execute(session, _MOVE_BALANCE,
                             {"extension_id": extension_id, "amount": amount}).first()
    return _fast.execute(session, _MOVE_BALANCE_SPENT, {
        "extension_id": extension_id, "amount": amount, "spent": -amount,
        "day": spent_on[0], "month": spent_on[1]}).first()


_HAS_ENTRY = select(ENTRY.c.id).where(ENTRY.c.kind == bindparam("kind"),
                                      ENTRY.c.reference == bindparam("reference"))
_REFERENCES_AMONG = select(ENTRY.c.reference).where(
    ENTRY.c.kind == bindparam("kind"),
    ENTRY.c.reference.in_(bindparam("references", expanding=True)))
# References looked up at once (well under every backend's limit of bound parameters).
_REFERENCES_AT_ONCE = 500


def has_entry(session: Session, kind: str, reference: str) -> bool:
    """An entry of this kind with this reference exists ((kind, reference) is unique)."""
    return _fast.execute(session, _HAS_ENTRY, {"kind": kind, "reference": reference}
                         ).first() is not None


async def references_among(session: AsyncSession, kind: str,
                           references: Sequence[str]) -> set[str]:
    """Which of `references` have an entry of `kind`: equality on the unique (kind,
    reference) index. (A range `prefix <= reference < prefix'` would depend on the column's
    collation: under PostgreSQL's en_US or ICU collations ';' sorts before ':', and a range
    of `fee:1:2:` to `fee:1:2;` is empty.)"""
    found: set[str] = set()
    for i in range(0, len(references), _REFERENCES_AT_ONCE):
        rows = await session.execute(_REFERENCES_AMONG, {
            "kind": kind, "references": list(references[i:i + _REFERENCES_AT_ONCE])})
        found.update(r for (r,) in rows.tuples())
    return found


class Head(NamedTuple):
    last_entry_id: int
    last_mac: str
    entries: int


_HEAD_KEPT = "ledger.head"


def chain_head(session: Session) -> Any:
    """The ledger's head (last_entry_id, last_mac, entries), locked for this transaction
    (FOR UPDATE), which keeps entry ids in chain order; None before migration 0004 made it.
    Read once a transaction: after this transaction moved it, it is what move_head wrote (a
    batch of settlements on SQLite's ledger thread, one transaction, reads it once)."""
    moved = _fast.kept(session, _HEAD_KEPT)
    if moved is not None:
        return moved
    return _fast.execute(session, _READ_HEAD, {}).first()


def append_entry(session: Session, **row: object) -> int:
    """Write one ledger entry (`row`: its columns, its MAC included); its id."""
    return int(_fast.execute(session, _NEW_ENTRY, row).scalar_one())


def move_head(session: Session, *, exists: bool, last_entry_id: int, last_mac: str,
              entries: int, mac: str) -> None:
    """Point the head at the new last entry (making the head if `exists` is False)."""
    if exists:
        _fast.execute(session, _MOVE_HEAD, {"last_entry_id": last_entry_id,
                                            "last_mac": last_mac, "entries": entries,
                                            "head_mac": mac})
    else:
        _fast.execute(session, _NEW_HEAD, {"id": 1, "last_entry_id": last_entry_id,
                                           "last_mac": last_mac, "entries": entries,
                                           "mac": mac})
    _fast.keep(session, _HEAD_KEPT, Head(last_entry_id, last_mac, entries))
