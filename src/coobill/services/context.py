"""What every service function needs: the ledger's unit of work, configuration and a clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from coobill.config import Settings
from coobill.rating import RateBook
from coobill.services.passwords import PasswordWork
from coobill.storage.uow import UnitOfWorkFactory
from coobill.tally import Tally


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class RateBookCache:
    """The rate book in memory, rebuilt when the database's rates_version moves on."""

    version: int = -1
    book: RateBook = field(default_factory=lambda: RateBook(()))
    # The buy rates, each matching the trunk it is for where a sell rate has extensions.
    buy_book: RateBook = field(default_factory=lambda: RateBook(()))


@dataclass(frozen=True)
class ServiceProgress:
    """What the services have done that someone may wait on (tests, the status line): counts
    that only grow (coobill/tally.py)."""

    # Settlements tried again because the ledger was unreachable or locked.
    settlement_retries: Tally = field(default_factory=Tally)
    # Reconciles given up because the PBX could not be asked again (the next login retries).
    reconciles_deferred: Tally = field(default_factory=Tally)


@dataclass
class BillingContext:
    uow: UnitOfWorkFactory
    config: Settings
    clock: Callable[[], datetime] = utc_now
    rate_cache: RateBookCache = field(default_factory=RateBookCache)
    # Password hashing's threads and their cap, shared by every login on this ledger.
    passwords: PasswordWork = field(default_factory=PasswordWork)
    progress: ServiceProgress = field(default_factory=ServiceProgress)
