"""A balance moved by a billing user: recharges (the same amount to each extension chosen)
and signed adjustments. Each is a ledger entry, announced in the outbox, refused whole above
the most a balance may hold (billing.max_balance), and rearms or trips the low-balance notice."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy.orm import Session

from coobill.errors import BadRequest
from coobill.money import ZERO, fmt, parse_amount
from coobill.services import ledger, low_balance, outbox
from coobill.services.context import BillingContext
from coobill.services.extensions import ExtensionView, check_number, check_numbers
from coobill.services.settings import billing_settings
from coobill.storage.tables import Extension, Recharge


async def recharge(
    ctx: BillingContext, numbers: Sequence[str], amount: str | int | Decimal, *, who: str = ""
) -> list[Recharge]:
    """Recharge each extension by the same amount, in one transaction."""
    value = parse_amount(amount, field="amount", allow_zero=False)
    numbers = check_numbers(numbers)

    def work(session: Session) -> list[Recharge]:
        now = billing_settings(session).local(ctx.clock())
        records = []
        for number in numbers:
            ext = ledger.locked_extension(session, number)
            _refuse_above_ceiling(ctx, ext, value)
            record = Recharge(
                created_at=now,
                extension_id=ext.id,
                balance_before=ZERO,
                amount=value,
                balance_after=ZERO,
                who=who,
            )
            session.add(record)
            session.flush()
            posted = ledger.post_entry(
                session,
                extension_id=ext.id,
                kind=ledger.RECHARGE,
                amount=value,
                at=now,
                reference=f"recharge:{record.id}",
                who=who,
            )
            before, after = posted.before, posted.after
            record.balance_before, record.balance_after = before, after
            ext.total_recharged = ext.total_recharged + value
            outbox.publish(ctx, session, outbox.RECHARGE, ext.number, {
                "amount": value, "balance_before": before, "balance_after": after, "who": who,
                "recharge": record.id})
            low_balance.check(ctx, session, ext.id, now,  # a recharge rearms it
                              view=posted.extension)
            records.append(record)
        session.flush()
        return records

    return await ctx.uow.run(work)


async def adjust(
    ctx: BillingContext, number: str, amount: str | int | Decimal, *, who: str = "", note: str = ""
) -> ExtensionView:
    """A signed correction of a balance by a billing user; a ledger entry like any other."""
    value = parse_amount(amount, field="amount", allow_zero=False, allow_negative=True)
    number = check_number(number)

    def work(session: Session) -> ExtensionView:
        ext = ledger.locked_extension(session, number)
        _refuse_above_ceiling(ctx, ext, value)
        now = billing_settings(session).local(ctx.clock())
        posted = ledger.post_entry(
            session,
            extension_id=ext.id,
            kind=ledger.ADJUSTMENT,
            amount=value,
            at=now,
            reference=None,
            who=(who + (f": {note}" if note else ""))[:64],
        )
        before, after = posted.before, posted.after
        outbox.publish(ctx, session, outbox.ADJUSTMENT, ext.number, {
            "amount": value, "balance_before": before, "balance_after": after, "who": who,
            "note": note})
        low_balance.check(ctx, session, ext.id, now, view=posted.extension)
        session.refresh(ext)
        return ExtensionView.of(ext)

    return await ctx.uow.run(work)


def _refuse_above_ceiling(ctx: BillingContext, ext: Extension, amount: Decimal) -> None:
    """Refused before anything is written: the transaction then rolls back whole."""
    ceiling = ctx.config.billing.max_balance
    if amount > 0 and ext.balance + amount > ceiling:
        raise BadRequest(
            f"amount: the balance of {ext.number} would be {fmt(ext.balance + amount)}, "
            f"above the most a balance may hold, {fmt(ceiling)} (billing.max_balance)",
            field="amount",
        )
