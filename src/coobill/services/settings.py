"""Billing settings kept in the ledger: billing on/off, currency, the PBX's time zone, the
account controls' defaults and the minimum margin."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import overload
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import BigInteger, Text, cast, update
from sqlalchemy.orm import Session

from coobill.errors import BadRequest
from coobill.money import parse_amount
from coobill.services.context import BillingContext
from coobill.storage import ledger_repo
from coobill.storage.tables import Setting
from coobill.storage.uow import UnitOfWork

CURRENCY_SYMBOLS = {"USD": "US$", "CNY": "¥", "EUR": "€", "GBP": "£", "VND": "₫"}
DEFAULTS = {
    "billing": "on",
    "currency": "USD",
    "currency_symbol": "US$",
    "rates_version": "0",
}
# The site-wide defaults of the account controls, for every extension that sets none of its
# own (services/caps.py, services/low_balance.py); "" or absent: none.
CONTROL_DEFAULTS = ("cap_daily", "cap_monthly", "max_call_cost", "max_price_minute",
                    "low_balance")


@lru_cache(maxsize=1)
def system_timezone() -> str:
    """The machine's own zone (the PBX's, on an appliance): $TZ, else /etc/localtime's name."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    with contextlib.suppress(OSError):
        candidates.append(Path("/etc/timezone").read_text().strip())
    link = Path("/etc/localtime")
    if link.is_symlink():
        candidates.append(str(link.resolve()).split("zoneinfo/", 1)[-1])
    for name in candidates:
        try:
            if name:
                ZoneInfo(name)
                return name
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return "UTC"


@dataclass(frozen=True, slots=True)
class BillingSettings:
    billing_enabled: bool
    currency: str
    currency_symbol: str
    timezone: str
    rates_version: int
    cap_daily: Decimal | None = None
    cap_monthly: Decimal | None = None
    max_call_cost: Decimal | None = None
    max_price_minute: Decimal | None = None
    low_balance: Decimal | None = None
    # The gate's minimum margin per minute (services/margin.py) as set with the CLI, the
    # portal or the API; None: the configuration's `billing.min_margin` applies.
    min_margin: Decimal | None = None

    def margin_floor(self, configured: Decimal | None) -> Decimal | None:
        """The minimum margin in force: the ledger's setting, else the configuration's."""
        return self.min_margin if self.min_margin is not None else configured

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local(self, instant: datetime) -> datetime:
        """An aware instant as the PBX's naive local time (how Asterisk's CDRs give times)."""
        return instant.astimezone(self.zone()).replace(tzinfo=None)

    def as_dict(self) -> dict[str, str]:
        return {
            "billing": "on" if self.billing_enabled else "off",
            "currency": self.currency,
            "currency_symbol": self.currency_symbol,
            "timezone": self.timezone,
        }

    def controls(self) -> dict[str, str]:
        """The account controls' site-wide defaults, by name ("": none)."""
        return {key: "" if getattr(self, key) is None else str(getattr(self, key))
                for key in CONTROL_DEFAULTS}


def settings_from_rows(rows: dict[str, str]) -> BillingSettings:
    values = {**DEFAULTS, "timezone": system_timezone(), **rows}
    return BillingSettings(
        billing_enabled=values["billing"] == "on",
        currency=values["currency"],
        currency_symbol=values["currency_symbol"],
        timezone=values["timezone"],
        rates_version=int(values["rates_version"]),
        **{key: _amount_or_none(values.get(key, "")) for key in CONTROL_DEFAULTS},
        min_margin=_amount_or_none(values.get("min_margin", "")),
    )


def _amount_or_none(text: str) -> Decimal | None:
    return Decimal(text) if text else None


def control_amount(value: str | Decimal | None, field: str) -> str | None:
    """A control's amount as a setting or a form gives it: None leaves it, "" or "none"
    clears it (no default / the default applies), else a 4-place amount, not negative."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() in ("", "none"):
        return ""
    return str(parse_amount(value, field=field))


@overload
def billing_settings(source: Session) -> BillingSettings: ...
@overload
def billing_settings(source: UnitOfWork | BillingContext) -> Awaitable[BillingSettings]: ...


def billing_settings(
    source: Session | UnitOfWork | BillingContext,
) -> BillingSettings | Awaitable[BillingSettings]:
    """The billing settings as the ledger has them now - the one way to read them, wherever
    the caller stands:

    - `billing_settings(session)`, in a transaction of the ledger thread (the gate and
      settlement, the hot path): read once per transaction and kept for the rest of it, so a
      change made with the CLI applies to the next one. (A transaction of the ledger thread
      may hold many calls' units of work: it holds SQLite's write lock throughout, so the
      settings cannot change under it.)
    - `await billing_settings(uow)`, inside an open unit of work's transaction;
    - `await billing_settings(ctx)`, in a read of its own.
    """
    if isinstance(source, Session):
        return ledger_repo.per_transaction(source, "coobill.settings", _read_in_transaction)
    return _read(source)


def _read_in_transaction(session: Session) -> BillingSettings:
    return settings_from_rows(ledger_repo.settings_rows(session))


async def _read(source: UnitOfWork | BillingContext) -> BillingSettings:
    if isinstance(source, UnitOfWork):
        return settings_from_rows(await ledger_repo.settings_rows_of(source.session))
    async with source.uow.read() as uow:
        return settings_from_rows(await ledger_repo.settings_rows_of(uow.session))



async def _put(uow: UnitOfWork, key: str, value: str) -> None:
    existing = await uow.session.get(Setting, key)
    if existing is None:
        uow.session.add(Setting(key=key, value=value))
    else:
        existing.value = value


async def bump_rates_version(uow: UnitOfWork) -> None:
    """Tell every daemon on this ledger that the rates changed (they reload on next use)."""
    result = await uow.session.execute(
        update(Setting)
        .where(Setting.key == "rates_version")
        .values(value=cast(cast(Setting.value, BigInteger) + 1, Text))
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        uow.session.add(Setting(key="rates_version", value="1"))


def symbol_chosen(currency: str, typed: str | None) -> str | None:
    """The symbol a choice of currency in a form means: a known currency takes its own (the
    symbol box a form always sends is ignored), only another currency the one typed in. The
    CLI passes `--symbol` as it is: there it is asked for on purpose."""
    return None if currency.strip().upper() in CURRENCY_SYMBOLS else typed


def _amount_changes(controls: dict[str, str | None],
                    min_margin: str | Decimal | None) -> dict[str, str]:
    """The settings rows the account controls' defaults and the minimum margin change to
    (control_amount)."""
    assert all(key in CONTROL_DEFAULTS for key in controls), controls
    changes: dict[str, str] = {}
    for key, value in {**controls, "min_margin": min_margin}.items():
        amount = control_amount(value, key)
        if amount is not None:
            changes[key] = amount
    return changes


async def change_settings(
    ctx: BillingContext,
    *,
    billing: str | None = None,
    currency: str | None = None,
    symbol: str | None = None,
    timezone: str | None = None,
    controls: dict[str, str | None] | None = None,
    min_margin: str | Decimal | None = None,
) -> BillingSettings:
    """Change any of the settings; all or nothing. `controls`: the account controls'
    defaults by CONTROL_DEFAULTS name (control_amount: "" clears one). `min_margin`: the
    gate's minimum margin per minute ("" or "none" clears it: the configuration's applies)."""
    changes = _amount_changes(controls or {}, min_margin)
    if billing is not None:
        if billing not in ("on", "off"):
            raise BadRequest("billing: must be on or off", field="billing")
        changes["billing"] = billing
    if currency is not None:
        code = currency.strip().upper()
        if code in CURRENCY_SYMBOLS:
            changes["currency"] = code
            changes["currency_symbol"] = symbol.strip() if symbol else CURRENCY_SYMBOLS[code]
        elif code == "OTHER" or (code.isalpha() and len(code) == 3):
            if not symbol or not symbol.strip():
                raise BadRequest(
                    "currency: another currency needs its symbol (--symbol)", field="symbol"
                )
            changes["currency"] = "OTHER" if code == "OTHER" else code
            changes["currency_symbol"] = symbol.strip()[:8]
        else:
            raise BadRequest(
                "currency: must be USD, CNY, EUR, GBP, VND or other (with a symbol)",
                field="currency",
            )
    elif symbol is not None:
        if not symbol.strip():
            raise BadRequest("symbol: must not be empty", field="symbol")
        changes["currency_symbol"] = symbol.strip()[:8]
    if timezone is not None:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise BadRequest(f"timezone: {timezone!r} is not a known time zone",
                             field="timezone") from None
        changes["timezone"] = timezone
    async with ctx.uow() as uow:
        for key, value in changes.items():
            await _put(uow, key, value)
        await uow.commit()
    return await billing_settings(ctx)
