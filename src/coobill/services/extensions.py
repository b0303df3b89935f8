"""Extensions: create or edit, lock, recharge, adjust, show and list."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select

from coobill.errors import BadRequest, UnknownExtension
from coobill.money import ZERO, fmt, parse_amount
from coobill.services import ledger, low_balance, outbox
from coobill.services.context import BillingContext
from coobill.services.funds import funds
from coobill.services.settings import billing_settings, control_amount
from coobill.storage.tables import Extension
from coobill.storage.uow import UnitOfWork

PAYMENTS = ("prepaid", "postpaid")
_NUMBER = re.compile(r"[A-Za-z0-9_.+-]{1,32}")


@dataclass(frozen=True, slots=True)
class ExtensionView:
    extension: str
    name: str
    billing: bool
    payment: str
    credit_limit: Decimal
    balance: Decimal
    total_recharged: Decimal
    reserved: Decimal
    locked: bool
    # The account controls as the extension sets them (None: the site's default applies).
    cap_daily: Decimal | None = None
    cap_monthly: Decimal | None = None
    max_call_cost: Decimal | None = None
    max_price_minute: Decimal | None = None
    low_balance: Decimal | None = None
    low_balance_since: datetime | None = None  # its funds are below the threshold since
    # Its funds at rest are below its threshold (or the site's) now: the portal's badge.
    below_threshold: bool = False

    @property
    def funds_available(self) -> Decimal:
        return funds(self.balance, self.credit_limit, self.reserved)

    @classmethod
    def of(cls, ext: Extension) -> ExtensionView:
        return cls(
            extension=ext.number, name=ext.name, billing=ext.billing_enabled,
            payment=ext.payment, credit_limit=ext.credit_limit, balance=ext.balance,
            total_recharged=ext.total_recharged, reserved=ext.reserved, locked=ext.locked,
            cap_daily=ext.cap_daily, cap_monthly=ext.cap_monthly,
            max_call_cost=ext.max_call_cost, max_price_minute=ext.max_price_minute,
            low_balance=ext.low_balance_threshold, low_balance_since=ext.low_balance_since,
        )


def check_number(number: str, field: str = "extension") -> str:
    number = (number or "").strip()
    # ASCII only: isalnum() alone takes full-width and other scripts' digits and letters,
    # which never match the endpoint Asterisk names.
    if not _NUMBER.fullmatch(number):
        raise BadRequest(f"{field}: {number!r} is not an extension number", field=field)
    return number


def check_numbers(numbers: Sequence[str]) -> list[str]:
    """The extensions a batch command is for: each checked, each once, at least one."""
    unique = list(dict.fromkeys(check_number(n) for n in numbers))
    if not unique:
        raise BadRequest("extensions: choose at least one", field="extensions")
    return unique


def check_payment(payment: str) -> str:
    if payment not in PAYMENTS:
        raise BadRequest("payment: must be prepaid or postpaid", field="payment")
    return payment


@dataclass(frozen=True, slots=True)
class ExtensionChanges:
    """What to change; None leaves a field as it is."""

    name: str | None = None
    billing: bool | None = None
    payment: str | None = None
    credit_limit: Decimal | None = None
    locked: bool | None = None
    # The account controls (CONTROLS): an amount, or "" ("none") for the site's default.
    cap_daily: Decimal | str | None = None
    cap_monthly: Decimal | str | None = None
    max_call_cost: Decimal | str | None = None
    max_price_minute: Decimal | str | None = None
    low_balance: Decimal | str | None = None

    def validated(self) -> ExtensionChanges:
        """The same changes, checked, with the amounts parsed to 4-place Decimals (a control
        cleared is "")."""
        if self.payment is not None:
            check_payment(self.payment)
        if self.name is not None and len(self.name) > 128:
            raise BadRequest("name: at most 128 characters", field="name")
        controls = {name: _control(getattr(self, name), name) for name in CONTROLS}
        credit = (None if self.credit_limit is None
                  else parse_amount(self.credit_limit, field="credit_limit"))
        return replace(self, credit_limit=credit, **controls)  # type: ignore[arg-type]


# The account controls an extension may set (services/caps.py, services/low_balance.py), by
# their column: each falls back on the site's setting of the same name.
CONTROLS = {"cap_daily": "cap_daily", "cap_monthly": "cap_monthly",
            "max_call_cost": "max_call_cost", "max_price_minute": "max_price_minute",
            "low_balance": "low_balance_threshold"}


def _control(value: Decimal | str | None, field: str) -> Decimal | str | None:
    amount = control_amount(value, field)
    return amount if amount in (None, "") else Decimal(amount)


def _apply(ext: Extension, changes: ExtensionChanges) -> None:
    if changes.name is not None:
        ext.name = changes.name.strip()
    if changes.billing is not None:
        ext.billing_enabled = changes.billing
    if changes.payment is not None and changes.payment != ext.payment:
        ext.payment = changes.payment
        ext.total_recharged = ZERO  # as the appliance does when the payment method changes
    if changes.credit_limit is not None:
        ext.credit_limit = changes.credit_limit
    if changes.locked is not None:
        ext.locked = changes.locked
    for name, column in CONTROLS.items():
        value = getattr(changes, name)
        if value is not None:
            setattr(ext, column, None if value == "" else value)


def _within_ceiling(ctx: BillingContext, changes: ExtensionChanges) -> ExtensionChanges:
    ceiling = ctx.config.billing.max_balance
    if changes.credit_limit is not None and changes.credit_limit > ceiling:
        raise BadRequest(f"credit_limit: at most {fmt(ceiling)} (billing.max_balance)",
                         field="credit_limit")
    return changes


async def set_extension(
    ctx: BillingContext, number: str, changes: ExtensionChanges,
) -> ExtensionView:
    """Create the extension if it is new, then apply the changes."""
    number = check_number(number)
    changes = _within_ceiling(ctx, changes.validated())
    async with ctx.uow() as uow:
        ext = await _get_for_update(uow, number)
        new = ext is None
        if ext is None:
            ext = _new_extension(number, "", await _local_now(ctx, uow))
            uow.session.add(ext)
        was_locked = bool(ext.locked)
        _apply(ext, changes)
        await uow.session.flush()
        await _tell_if_locked(ctx, uow, ext, was_locked, "billing_user")
        await _check_low_balance(ctx, uow, ext, announce=not new)
        view = ExtensionView.of(ext)
        await uow.commit()
    return view


async def _check_low_balance(ctx: BillingContext, uow: UnitOfWork, ext: Extension, *,
                             announce: bool = True) -> None:
    """A new credit limit or threshold may take its funds below the threshold, or back."""
    at = await _local_now(ctx, uow)
    ext_id = ext.id
    await uow.session.run_sync(lambda session: low_balance.check(ctx, session, ext_id, at,
                                                                 announce=announce))
    await uow.session.refresh(ext)


async def edit_extensions(
    ctx: BillingContext, numbers: Sequence[str], changes: ExtensionChanges
) -> list[ExtensionView]:
    """Batch edit existing extensions, one transaction: all or none."""
    changes = _within_ceiling(ctx, changes.validated())
    numbers = check_numbers(numbers)
    async with ctx.uow() as uow:
        views = []
        for number in numbers:
            ext = await ledger.lock_extension(uow, number)
            was_locked = ext.locked
            _apply(ext, changes)
            await uow.session.flush()
            await _tell_if_locked(ctx, uow, ext, was_locked, "billing_user")
            await _check_low_balance(ctx, uow, ext)
            views.append(ExtensionView.of(ext))
        await uow.commit()
    return views


async def show_extension(ctx: BillingContext, number: str) -> ExtensionView:
    async with ctx.uow() as uow:
        ext = (
            await uow.session.execute(select(Extension).where(Extension.number == number))
        ).scalar_one_or_none()
        if ext is None:
            raise UnknownExtension(f"extension {number} does not exist", field="extension")
        return ExtensionView.of(ext)


async def ensure_extensions(ctx: BillingContext, endpoints: Sequence[tuple[str, str]]) -> list[str]:
    """Give billing rows (billing off) to endpoints that have none; existing rows untouched."""
    created: list[str] = []
    async with ctx.uow() as uow:
        existing = set((await uow.session.execute(select(Extension.number))).scalars().all())
        now = await _local_now(ctx, uow)
        for number, name in endpoints:
            if number in existing:
                continue
            uow.session.add(_new_extension(number, name[:128], now))
            existing.add(number)
            created.append(number)
        await uow.commit()
    return created


def _new_extension(number: str, name: str, at: datetime) -> Extension:
    """An extension as it starts: billing off, prepaid, nothing in it, unlocked."""
    return Extension(number=number, name=name, billing_enabled=False, payment="prepaid",
                     credit_limit=ZERO, balance=ZERO, total_recharged=ZERO, locked=False,
                     created_at=at)


async def _tell_if_locked(ctx: BillingContext, uow: UnitOfWork, ext: Extension,
                          was_locked: bool, reason: str) -> None:
    """An extension that became locked: the extension.locked event, in this transaction."""
    if ext.locked and not was_locked:
        number = ext.number
        await uow.session.run_sync(lambda session: outbox.publish(
            ctx, session, outbox.EXTENSION_LOCKED, number, {"reason": reason}))


async def _get_for_update(uow: UnitOfWork, number: str) -> Extension | None:
    return (
        await uow.session.execute(
            select(Extension).where(Extension.number == number).with_for_update()
        )
    ).scalar_one_or_none()


async def _local_now(ctx: BillingContext, uow: UnitOfWork) -> datetime:
    return (await billing_settings(uow)).local(ctx.clock())

