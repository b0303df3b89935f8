"""Recurring fees: a monthly or weekly charge to one extension, or to every billed one.

The daemon (daemon/fees.py) calls `charge_due` every `billing.fee_check_seconds`. A fee is due
for every period, in the PBX's time zone, from the one its start day falls in (or the one the
extension was created in, if later) to the current one; each is charged once:

- exactly once, across restarts and daemons: the charge is a ledger entry of kind "fee" whose
  reference names the fee, the extension and the period (`fee:<fee>:<extension>:2027-01`,
  `…:2027-W03` for ISO weeks); the ledger's unique (kind, reference) refuses a second, and
  the unit of work looks for it first;
- missed periods (the daemon was down) are charged when it runs again, each once;
- never again: a recharge or anything else moves no fee - only a period without its entry is
  charged, and it is charged whatever the funds are.

A charge is also a recharge record of kind "fee" (negative, shown among the recharge records;
`coobill audit` matches the two) and a `fee` webhook event. A charge that takes the funds
(balance + credit - held) below zero is still charged; the fee's `over_credit` then says
what follows: "lock" the extension (an `extension.locked` event), or "flag" it (the `fee`
event says `over_credit`, and the log a `fees.over_credit` line) for a billing user.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from coobill.errors import BadRequest, UnknownExtension
from coobill.money import ZERO, parse_amount
from coobill.services import bounds, ledger, low_balance, outbox
from coobill.services.context import BillingContext
from coobill.services.extensions import check_number
from coobill.services.funds import funds
from coobill.services.settings import billing_settings
from coobill.storage import ledger_repo
from coobill.storage.tables import Extension, Fee, Recharge

log = logging.getLogger("coobill.fees")

MONTHLY, WEEKLY = "monthly", "weekly"
PERIODS = (MONTHLY, WEEKLY)
LOCK, FLAG = "lock", "flag"
OVER_CREDIT = (LOCK, FLAG)
EVERY_BILLED = "*"
MAX_DAYS_BACK = 366  # how far back a new fee's first period may begin


# -- periods -----------------------------------------------------------------------------------

def period_start(period: str, day: date) -> date:
    if period == MONTHLY:
        return day.replace(day=1)
    return day - timedelta(days=day.weekday())  # ISO weeks begin on Monday


def _next_start(period: str, start: date) -> date:
    if period == MONTHLY:
        return date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return start + timedelta(days=7)


def period_key(period: str, day: date) -> str:
    """The period's name: 2027-01 (a month), 2027-W03 (an ISO week)."""
    if period == MONTHLY:
        return f"{day.year:04d}-{day.month:02d}"
    iso = day.isocalendar()
    return f"{iso.year:04d}-W{iso.week:02d}"


def periods_through(period: str, first_day: date, today: date) -> list[str]:
    """Every period from the one `first_day` falls in to the one `today` does."""
    keys = []
    start = period_start(period, first_day)
    while start <= today:
        keys.append(period_key(period, start))
        start = _next_start(period, start)
    return keys


# -- the fees ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class FeeView:
    id: int
    extension: str
    name: str
    amount: Decimal
    period: str
    over_credit: str
    starts: date
    enabled: bool

    @classmethod
    def of(cls, fee: Fee) -> FeeView:
        return cls(fee.id, fee.extension, fee.name, fee.amount, fee.period, fee.over_credit,
                   fee.starts.date(), fee.enabled)


def _check_day(text: str | None, field: str = "starts") -> date | None:
    if text in (None, ""):
        return None
    try:
        return date.fromisoformat(str(text).strip())
    except ValueError:
        raise BadRequest(f"{field}: {text!r} is not a day, YYYY-MM-DD", field=field) from None


async def add_fee(ctx: BillingContext, extension: str, amount: str | Decimal, *,
                  period: str = MONTHLY, over_credit: str = LOCK, name: str = "",
                  starts: str | None = None) -> FeeView:
    """A new recurring fee for `extension` ("*": every extension with billing on)."""
    value = parse_amount(amount, field="amount", allow_zero=False)
    if period not in PERIODS:
        raise BadRequest("period: must be monthly or weekly", field="period")
    if over_credit not in OVER_CREDIT:
        raise BadRequest("over_credit: must be lock or flag", field="over_credit")
    name = (name or "").strip()
    if len(name) > 64:
        raise BadRequest("name: at most 64 characters", field="name")
    first = _check_day(starts)
    target = extension.strip() if extension.strip() == EVERY_BILLED else check_number(extension)
    async with ctx.uow() as uow:
        if target != EVERY_BILLED and (await uow.session.execute(
                select(Extension.id).where(Extension.number == target))).first() is None:
            raise UnknownExtension(f"extension {target} does not exist", field="extension")
        now = (await billing_settings(uow)).local(ctx.clock())
        if first is not None and first < now.date() - timedelta(days=MAX_DAYS_BACK):
            # Each period back to it would be charged at once: a typo of a year must not be.
            raise BadRequest("starts: at most a year back", field="starts")
        fee = Fee(extension=target, name=name or f"{period} fee", amount=value, period=period,
                  over_credit=over_credit, enabled=True, created_at=now,
                  starts=datetime.combine(first or now.date(), datetime.min.time()))
        uow.session.add(fee)
        await uow.session.flush()
        view = FeeView.of(fee)
        await uow.commit()
    return view


async def list_fees(ctx: BillingContext) -> list[FeeView]:
    """The fees in force (a removed one is kept, disabled: see `remove_fee`)."""
    async with ctx.uow.read() as uow:
        rows = (await uow.session.execute(
            select(Fee).where(Fee.enabled.is_(True)).order_by(Fee.id))).scalars()
        return [FeeView.of(f) for f in rows]


async def remove_fee(ctx: BillingContext, fee_id: int | str) -> FeeView:
    """Stop a fee; what it charged stays in the ledger.

    The row stays, disabled: its id is in its charges' references, and SQLite gives a new row
    the highest id + 1 - a deleted last fee's id would go to the next fee, which would then
    find the old one's charges under its own references and never be charged for them."""
    number = bounds.whole_number(fee_id, "id", minimum=1, maximum=bounds.MAX_ID)
    async with ctx.uow() as uow:
        fee = await uow.session.get(Fee, number)
        if fee is None or not fee.enabled:
            raise BadRequest(f"fee {number}: no such fee", field="id")
        fee.enabled = False
        view = FeeView.of(fee)
        await uow.commit()
    return view


# -- charging ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class FeeCharged:
    fee_id: int
    extension: str
    period: str
    amount: Decimal
    balance_after: Decimal
    over_credit: bool


async def charge_due(ctx: BillingContext, *, through: datetime | None = None
                     ) -> list[FeeCharged]:
    """Charge every fee for every period it is due and not yet charged: the periods begun,
    in the PBX's time zone, by the instant `through` (default now; daemon/fees.py passes
    an earlier one when the wall clock jumped ahead)."""
    async with ctx.uow.read() as uow:
        today = (await billing_settings(uow)).local(through or ctx.clock()).date()
        fees = list((await uow.session.execute(
            select(Fee).where(Fee.enabled.is_(True)).order_by(Fee.id))).scalars())
        billed = list((await uow.session.execute(
            select(Extension.id, Extension.number, Extension.created_at)
            .where(Extension.billing_enabled.is_(True)))).tuples())
        due: list[tuple[Fee, str, list[str]]] = []
        for fee in fees:
            for ext_id, number, created in billed:
                if fee.extension not in (EVERY_BILLED, number):
                    continue
                first = max(fee.starts.date(), created.date() if created else fee.starts.date())
                prefix = f"fee:{fee.id}:{ext_id}:"
                keys = periods_through(fee.period, first, today)
                done = await ledger_repo.references_among(
                    uow.session, ledger.FEE, [prefix + k for k in keys])
                missing = [k for k in keys if prefix + k not in done]
                if missing:
                    due.append((fee, number, missing))
    charged: list[FeeCharged] = []
    for fee, number, missing in due:
        try:
            charged += await ctx.uow.run(partial(_charge, ctx, fee=fee, number=number,
                                                 periods=missing))
        except IntegrityError:
            # Another daemon charged these very periods meanwhile: each is charged once.
            log.info("fees.charged_elsewhere fee=%s ext=%s", fee.id, number)
    return charged


def _charge(ctx: BillingContext, session: Session, *, fee: Fee, number: str,
            periods: list[str]) -> list[FeeCharged]:
    ext = ledger.locked_extension(session, number)
    # Read again now that the row is held: the fee may have been removed while this waited.
    current = session.get(Fee, fee.id, populate_existing=True)
    if current is None or not current.enabled:
        return []
    now = billing_settings(session).local(ctx.clock())
    who = f"fee: {fee.name}"[:64]
    done = []
    for key in periods:
        reference = f"fee:{fee.id}:{ext.id}:{key}"
        if ledger_repo.has_entry(session, ledger.FEE, reference):
            continue
        record = Recharge(created_at=now, extension_id=ext.id, balance_before=ZERO,
                          amount=-fee.amount, balance_after=ZERO, who=who, kind=ledger.FEE,
                          reference=reference)
        session.add(record)
        session.flush()
        posted = ledger.post_entry(session, extension_id=ext.id, kind=ledger.FEE,
                                   amount=-fee.amount, at=now, reference=reference, who=who)
        before, after = posted.before, posted.after
        record.balance_before, record.balance_after = before, after
        over = funds(after, ext.credit_limit, ext.reserved) < 0
        outbox.publish(ctx, session, outbox.FEE, number, {
            "fee": fee.id, "name": fee.name, "period": key, "amount": fee.amount,
            "balance_after": after, "over_credit": over})
        low_balance.check(ctx, session, ext.id, now, view=posted.extension)
        log.info("fees.charged fee=%s ext=%s period=%s amount=%s balance_after=%s", fee.id,
                 number, key, fee.amount, after)
        if over:
            _over_credit(ctx, session, fee, ext, key)
        done.append(FeeCharged(fee.id, number, key, fee.amount, after, over))
    session.flush()
    return done


def _over_credit(ctx: BillingContext, session: Session, fee: Fee, ext: Extension,
                 key: str) -> None:
    log.warning("fees.over_credit fee=%s ext=%s period=%s then=%s", fee.id, ext.number, key,
                fee.over_credit)
    if fee.over_credit == LOCK and not ext.locked:
        ext.locked = True
        outbox.publish(ctx, session, outbox.EXTENSION_LOCKED, ext.number,
                       {"reason": "fee_over_credit", "fee": fee.id, "period": key})
