"""Posting to the ledger: the only code that changes a balance.

Every change is one conditional UPDATE ... RETURNING (no read-modify-write, so two daemons on
one PostgreSQL cannot lose an update) plus one append-only entry carrying the balance after.

The entries are a chain: each carries `mac = HMAC-SHA256(key, previous mac | the entry)`, and
the chain's head (table ledger_head: the last entry, the count, a MAC of those) is updated in
the same transaction. The key lives outside the database (storage/ledger_key.py), so a rewrite
of the database alone - an amount raised, an entry removed or added, the last entries cut off -
breaks the chain where it happened, and `coobill audit` names that entry. The head row is
locked for the transaction (FOR UPDATE; SQLite's BEGIN IMMEDIATE already serializes writers),
which keeps ids in chain order.

These functions take a sync Session: every caller runs them in a unit of work of
UnitOfWorkFactory.run; their statements are storage/ledger_repo/'s.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from coobill.errors import UnknownExtension
from coobill.money import to_units
from coobill.services import caps
from coobill.storage import ledger_repo
from coobill.storage.tables import Extension
from coobill.storage.uow import LEDGER_KEY, UnitOfWork

RECHARGE = "recharge"
CALL_DEBIT = "call_debit"
ADJUSTMENT = "adjustment"
FEE = "fee"  # a recurring fee charged once per period (services/fees.py)

def entry_text(
    previous_mac: str, extension_id: int, number: str, kind: str, amount: Decimal,
    balance_after: Decimal, reference: str | None, who: str, at: datetime,
) -> bytes:
    """What an entry's MAC covers, in one canonical form (the audit recomputes it): the
    extension by its row and by its number (whose money it is, to the world)."""
    fields = (previous_mac, str(extension_id), number, kind, str(to_units(amount)),
              str(to_units(balance_after)), reference or "", who, at.isoformat())
    return "\x1f".join(fields).encode()


def mac(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def head_text(last_entry_id: int, last_mac: str, entries: int) -> bytes:
    return f"head\x1f{last_entry_id}\x1f{last_mac}\x1f{entries}".encode()


def sealed_head(key: bytes, last_entry_id: int, last_mac: str, entries: int) -> str:
    return mac(key, head_text(last_entry_id, last_mac, entries))


def append_entry(
    session: Session,
    *,
    extension_id: int,
    number: str,
    kind: str,
    amount: Decimal,
    balance_after: Decimal,
    at: datetime,
    reference: str | None = None,
    who: str = "",
) -> int:
    """Write one entry at the end of the chain; returns its id."""
    key: bytes = session.info[LEDGER_KEY]
    head = ledger_repo.chain_head(session)
    previous = head.last_mac if head is not None else ""
    sealed = mac(key, entry_text(previous, extension_id, number, kind, amount, balance_after,
                                 reference, who, at))
    entry_id = ledger_repo.append_entry(
        session, extension_id=extension_id, kind=kind, amount=amount,
        balance_after=balance_after, reference=reference, who=who, created_at=at, mac=sealed,
    )
    entries = (head.entries if head is not None else 0) + 1
    # head is None: a ledger from before migration 0004 made the head.
    ledger_repo.move_head(session, exists=head is not None, last_entry_id=entry_id,
                         last_mac=sealed, entries=entries,
                         mac=mac(key, head_text(entry_id, sealed, entries)))
    return entry_id


class Posted(NamedTuple):
    """A balance moved: before and after, and the extension's row as the move left it (its
    number, balance, credit_limit, low_balance_threshold, low_balance_since: what
    low_balance.check reads)."""

    before: Decimal
    after: Decimal
    extension: Any


def post_entry(
    session: Session,
    *,
    extension_id: int,
    kind: str,
    amount: Decimal,
    at: datetime,
    reference: str | None = None,
    who: str = "",
) -> Posted:
    """Add `amount` (signed) to a balance; returns the balance before and after it. A call's
    debit counts as its day's and month's spending too, for the caps (services/caps.py)."""
    spent_on = (caps.day_of(at), caps.month_of(at)) if kind == CALL_DEBIT else None
    moved = ledger_repo.move_balance(session, extension_id, amount, spent_on)
    if moved is None:
        raise UnknownExtension(f"extension {extension_id} does not exist")
    after = moved.balance
    append_entry(session, extension_id=extension_id, number=moved.number, kind=kind,
                 amount=amount, balance_after=after, at=at, reference=reference, who=who)
    return Posted(after - amount, after, moved)


async def lock_extension(uow: UnitOfWork, number: str) -> Extension:
    """The extension's row, locked for this transaction (FOR UPDATE on PostgreSQL; SQLite's
    BEGIN IMMEDIATE already holds the database's write lock)."""
    ext = await ledger_repo.extension_for_update(uow.session, number)
    if ext is None:
        raise UnknownExtension(f"extension {number} does not exist", field="extension")
    return ext


def locked_extension(session: Session, number: str) -> Extension:
    """`lock_extension` in a unit of work of UnitOfWorkFactory.run."""
    ext = ledger_repo.extension_for_update_now(session, number)
    if ext is None:
        raise UnknownExtension(f"extension {number} does not exist", field="extension")
    return ext
