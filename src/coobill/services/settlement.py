"""Settling a call when it ends: record it, debit its exact cost, release its hold — once.

Exactly once is the database's job, not memory's: the call's uniqueid is unique in `call`,
and (call_debit, uniqueid) is unique in the ledger, so a repeated or concurrent settlement
of the same call fails its insert and rolls back whole.
"""

from __future__ import annotations

import logging
import re
from functools import partial

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from coobill.money import ZERO
from coobill.rating import Tariff, cost
from coobill.services import ledger
from coobill.services.commands import Disposition, SettleCall, Settlement
from coobill.services.context import BillingContext
from coobill.services.gate import tariff_from_text
from coobill.services.rates import rate_book
from coobill.services.settings import BillingSettings, settings_now
from coobill.storage.fast import execute
from coobill.storage.tables import Call, Extension, Reservation, table

log = logging.getLogger("coobill.settlement")


async def settle_call(ctx: BillingContext, cmd: SettleCall) -> Settlement | None:
    """Settle one ended call. Returns None for a call that is not ours to record
    (an internal call that never passed the gate)."""
    try:
        return await ctx.uow.run(partial(_settle, ctx, cmd))
    except IntegrityError:
        # Another daemon (or a duplicate event racing us) settled it first.
        return Settlement(cmd.uniqueid, ZERO, debited=False)


_call = table(Call)
_reservation = table(Reservation)
_extension = table(Extension)
# Built once: settlement runs them for every call that ends.
_TAKE_HOLD = (
    delete(_reservation)
    .where(_reservation.c.uniqueid == bindparam("uniqueid"))
    .returning(
        _reservation.c.extension_id, _reservation.c.extension_number, _reservation.c.amount,
        _reservation.c.billed, _reservation.c.tariff, _reservation.c.rate_id,
        _reservation.c.rate_label,
    )
)
_ALREADY_SETTLED = select(_call.c.cost).where(_call.c.uniqueid == bindparam("uniqueid"))
_EXTENSION_BY_NUMBER = select(
    _extension.c.id, _extension.c.billing_enabled, _extension.c.balance
).where(_extension.c.number == bindparam("number"))
_RECORD_CALL = insert(_call)


def _settle(ctx: BillingContext, cmd: SettleCall, session: Session) -> Settlement | None:
    """A gated call: take its hold (a delete), record the call, debit and release in one
    update, write the debit's ledger entry. Anything that fails rolls all of it back."""
    held = execute(session, _TAKE_HOLD, {"uniqueid": cmd.uniqueid}).first()
    if held is None:
        # A settled call has no hold left; a call that has neither never passed the gate.
        done = execute(session, _ALREADY_SETTLED, {"uniqueid": cmd.uniqueid}).scalar_one_or_none()
        if done is not None:
            return Settlement(cmd.uniqueid, done, debited=False)
    settings = settings_now(session)

    tariff: Tariff | None = None
    rate_id: int | None = None
    rate_label = ""
    extension_number = cmd.caller_extension
    extension_id: int | None = None
    balance_after = None
    if held is not None:
        extension_number, extension_id = held.extension_number, held.extension_id
        if held.billed:
            tariff, rate_id, rate_label = tariff_from_text(held.tariff), held.rate_id, held.rate_label
    else:
        if _is_internal(session, cmd, ctx.config.ami.phone_pattern):
            return None
        ext = execute(session, _EXTENSION_BY_NUMBER, {"number": extension_number}).first()
        # An ungated call is billed only to a known extension with billing on: an unknown
        # one calls free (as the gate lets it) and has no balance to debit.
        if ext is not None:
            extension_id, balance_after = ext.id, ext.balance
            if settings.billing_enabled and ext.billing_enabled:
                tariff, rate_id, rate_label = _rate_for_ungated(ctx, session, cmd, settings)
    answered = cmd.disposition == Disposition.ANSWERED
    amount = cost(tariff, cmd.billable_seconds) if tariff is not None and answered else ZERO

    # The unique uniqueid stops a second settlement here (IntegrityError, all rolled back).
    execute(session, _RECORD_CALL, {
        "uniqueid": cmd.uniqueid, "caller_extension": extension_number,
        "caller_name": cmd.caller_name[:128], "dialled_number": cmd.dialled_number[:64],
        "start": cmd.start, "answer": cmd.answer, "end": cmd.end,
        "billable_seconds": max(cmd.billable_seconds, 0), "trunk": (cmd.trunk or "")[:64],
        "rate_id": rate_id if tariff is not None else None,
        "rate_label": rate_label if tariff is not None else "", "cost": amount,
        "disposition": str(cmd.disposition), "gated": held is not None, "evidence": cmd.evidence,
    })

    held_amount = held.amount if held is not None else ZERO
    if extension_id is not None and (amount or held_amount):
        balance_after = ledger.settle_hold(
            session, extension_id=extension_id, debit=amount, held=held_amount,
            at=cmd.end or settings.local(ctx.clock()), reference=cmd.uniqueid,
        )
        if held is not None and amount > held_amount:
            log.warning(
                "settlement.over_hold uniqueid=%s ext=%s cost=%s held=%s",
                cmd.uniqueid, extension_number, amount, held_amount,
            )
    log.info(
        "settlement.debit uniqueid=%s ext=%s number=%s disposition=%s billsec=%s trunk=%s "
        "rate=%s cost=%s balance_after=%s gated=%s evidence=%s",
        cmd.uniqueid, extension_number, cmd.dialled_number, cmd.disposition,
        cmd.billable_seconds, cmd.trunk or "-", rate_id or "-", amount,
        balance_after if balance_after is not None else "-", held is not None, cmd.evidence,
    )
    return Settlement(cmd.uniqueid, amount, debited=True, balance_after=balance_after, rate_id=rate_id)


def _is_internal(session: Session, cmd: SettleCall, phone_pattern: str) -> bool:
    """An ungated call is ours to record only if it went out: not to a phone, not to an
    extension's number."""
    if cmd.trunk and re.search(phone_pattern, cmd.trunk):
        return True
    found = (
        session.execute(
            select(Extension.id).where(Extension.number == cmd.dialled_number)
        )
    ).scalar_one_or_none()
    return found is not None


def _rate_for_ungated(
    ctx: BillingContext, session: Session, cmd: SettleCall, settings: BillingSettings
) -> tuple[Tariff | None, int | None, str]:
    when = cmd.answer or cmd.start or cmd.end
    if when is None:
        return None, None, ""
    rate = rate_book(ctx, session, settings.rates_version).select(cmd.caller_extension, cmd.dialled_number, when.time())
    if rate is None:
        return None, None, ""
    return rate.tariff, rate.id, f"#{rate.id} {rate.prefix or '(any)'} {rate.remark}".strip()
