"""Opening the ledger with its key: the key must be the one the ledger was sealed with, and
entries from before the seal (a ledger older than migration 0004) are sealed once.

The ledger keeps a fingerprint of its key (an HMAC of a fixed text, setting
`ledger_key_fingerprint`), so a daemon given another key - a second PBX on the same PostgreSQL
without a copy of the first one's key file - refuses to start instead of writing entries the
audit would take for forgeries.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from coobill.errors import ConfigurationError
from coobill.services import ledger
from coobill.services.context import BillingContext
from coobill.storage.tables import LedgerEntry, LedgerHead, Setting
from coobill.storage.uow import LEDGER_KEY

log = logging.getLogger("coobill.ledger")

FINGERPRINT = "ledger_key_fingerprint"


def fingerprint(key: bytes) -> str:
    return ledger.mac(key, b"coobill ledger key")[:32]


async def open_ledger(ctx: BillingContext) -> None:
    """Check the key against the ledger's fingerprint (keeping it, the first time) and seal
    the entries that have no seal yet. ConfigurationError for another ledger's key."""
    sealed = await ctx.uow.run(_open)
    if sealed:
        log.warning("ledger.sealed entries=%d reason=first_opened_with_a_key", sealed)


def _open(session: Session) -> int:
    key: bytes = session.info[LEDGER_KEY]
    mine = fingerprint(key)
    stored = session.get(Setting, FINGERPRINT)
    if stored is None:
        session.add(Setting(key=FINGERPRINT, value=mine))
    elif stored.value != mine:
        raise ConfigurationError(
            "config: database.key_file: this is not the key the ledger was sealed with (every "
            "daemon on one ledger needs a copy of the same key file)")
    else:
        return 0
    return _seal_unsealed(session, key)


def _seal_unsealed(session: Session, key: bytes) -> int:
    """Chain the entries written before the ledger had a key (trust on first use). Only a
    ledger with no seal at all: an unsealed entry among sealed ones is a forgery for the
    audit to name, never one to bless."""
    entries = list(session.execute(select(LedgerEntry).order_by(LedgerEntry.id)).scalars())
    if not entries or any(e.mac is not None for e in entries):
        return 0
    previous = ""
    for entry in entries:
        entry.mac = ledger.mac(key, ledger.entry_text(
            previous, entry.extension_id, entry.kind, entry.amount, entry.balance_after,
            entry.reference, entry.who, entry.created_at))
        previous = entry.mac
    head = session.get(LedgerHead, 1) or LedgerHead(id=1)
    head.last_entry_id, head.last_mac, head.entries = entries[-1].id, previous, len(entries)
    head.mac = ledger.mac(key, ledger.head_text(head.last_entry_id, previous, len(entries)))
    session.add(head)
    return len(entries)
