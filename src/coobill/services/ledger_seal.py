"""Opening the ledger with its key, and sealing a ledger from before the seal existed.

The ledger keeps a fingerprint of its key (an HMAC of a fixed text, setting
`ledger_key_fingerprint`), so a daemon given another key - a second PBX on the same PostgreSQL
without a copy of the first one's key file - refuses to start instead of writing entries the
audit would take for forgeries. A new, empty ledger gets its fingerprint and a sealed empty
head when it is first opened.

Entries written before migration 0004 have no seal. They are sealed once, by `coobill migrate`
as it takes the ledger past 0004 (`seal_entries_from_before_the_seal`), and never otherwise:
an unsealed entry found later is a forgery for the audit to name, not one to bless - whoever
blanks the seals and the fingerprint gets no fresh seal from the next command.
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coobill.errors import ConfigurationError
from coobill.services import ledger
from coobill.services.context import BillingContext
from coobill.storage.tables import Extension, LedgerEntry, LedgerHead, Setting
from coobill.storage.uow import LEDGER_KEY

log = logging.getLogger("coobill.ledger")

FINGERPRINT = "ledger_key_fingerprint"
# The revisions before the ledger had seals: `coobill migrate` from one of them seals.
UNSEALED_REVISIONS = frozenset({"0001", "0002", "0003"})


def fingerprint(key: bytes) -> str:
    return ledger.mac(key, b"coobill ledger key")[:32]


async def open_ledger(ctx: BillingContext) -> None:
    """Check the key against the ledger's fingerprint (keeping it, and sealing the empty head
    of a ledger without entries, the first time). ConfigurationError for another's key."""
    await ctx.uow.run(_open)


def _open(session: Session) -> None:
    key: bytes = session.info[LEDGER_KEY]
    mine = fingerprint(key)
    stored = session.get(Setting, FINGERPRINT)
    if stored is not None:
        if stored.value != mine:
            raise ConfigurationError(
                "config: database.key_file: this is not the key the ledger was sealed with "
                "(every daemon on one ledger needs a copy of the same key file)")
        return
    session.add(Setting(key=FINGERPRINT, value=mine))
    head = session.get(LedgerHead, 1)
    entries = session.execute(select(func.count()).select_from(LedgerEntry)).scalar_one()
    if not entries and (head is None or not head.mac):
        head = head or LedgerHead(id=1)
        head.last_entry_id, head.last_mac, head.entries = 0, "", 0
        head.mac = ledger.sealed_head(key, 0, "", 0)
        session.add(head)


async def seal_entries_from_before_the_seal(ctx: BillingContext) -> int:
    """`coobill migrate`, having taken a ledger from before migration 0004 to the head: chain
    its entries with the key (trust on first use). Only a ledger without a single seal."""
    sealed = await ctx.uow.run(_seal)
    if sealed:
        log.warning("ledger.sealed entries=%d reason=upgraded_from_before_the_seal", sealed)
    return sealed


def _seal(session: Session) -> int:
    key: bytes = session.info[LEDGER_KEY]
    entries = list(session.execute(select(LedgerEntry).order_by(LedgerEntry.id)).scalars())
    if not entries or any(e.mac is not None for e in entries):
        return 0
    numbers = dict(session.execute(select(Extension.id, Extension.number)).tuples().all())
    previous = ""
    for entry in entries:
        entry.mac = ledger.mac(key, ledger.entry_text(
            previous, entry.extension_id, numbers.get(entry.extension_id, ""), entry.kind,
            entry.amount, entry.balance_after, entry.reference, entry.who, entry.created_at))
        previous = entry.mac
    head = session.get(LedgerHead, 1) or LedgerHead(id=1)
    head.last_entry_id, head.last_mac, head.entries = entries[-1].id, previous, len(entries)
    head.mac = ledger.sealed_head(key, head.last_entry_id, previous, len(entries))
    session.add(head)
    if session.get(Setting, FINGERPRINT) is None:
        session.add(Setting(key=FINGERPRINT, value=fingerprint(key)))
    return len(entries)
