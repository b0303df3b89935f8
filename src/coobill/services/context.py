"""What every service function needs: the ledger's unit of work, configuration and a clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from coobill.config import Settings
from coobill.rating import RateBook
from coobill.storage.uow import UnitOfWorkFactory


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class RateBookCache:
    """The rate book in memory, rebuilt when the database's rates_version moves on."""

    version: int = -1
    book: RateBook = field(default_factory=lambda: RateBook(()))


@dataclass
class SettingsCache:
    """The billing settings as the gate last read them, and when (time.monotonic())."""

    value: object | None = None
    read_at: float = float("-inf")


@dataclass
class BillingContext:
    uow: UnitOfWorkFactory
    config: Settings
    clock: Callable[[], datetime] = utc_now
    rate_cache: RateBookCache = field(default_factory=RateBookCache)
    settings_cache: SettingsCache = field(default_factory=SettingsCache)
    # How stale the gate may see the billing settings and the rates version. 0: read them in
    # every authorization (a few rows), so a rate added or billing turned off with the CLI
    # applies to the very next call. The rate book itself is rebuilt only when it changed.
    settings_ttl: float = 0.0
