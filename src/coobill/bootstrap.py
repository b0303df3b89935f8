"""Wiring: build the billing context from settings. Nothing is built at import time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from coobill.config import Settings
from coobill.services.context import BillingContext, utc_now
from coobill.storage.db import create_engine
from coobill.storage.ledger_key import key_path, load_key
from coobill.storage.uow import UnitOfWorkFactory


def bootstrap(
    settings: Settings,
    *,
    uow: UnitOfWorkFactory | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> BillingContext:
    if uow is None:
        database = settings.database
        key = load_key(key_path(database.url, database.key_file))
        engine = create_engine(database.url, busy_timeout_ms=database.busy_timeout_ms)
        uow = UnitOfWorkFactory(engine, ledger_key=key)
    return BillingContext(uow=uow, config=settings, clock=clock)
