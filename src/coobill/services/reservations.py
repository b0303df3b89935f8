"""Live calls' holds: listing them, reconciling them with the PBX, resolving flagged ones.

After a restart or an AMI outage the daemon asks Asterisk which channels are live. A hold
whose channel is gone and whose end was missed is settled from the best evidence, in order:
1. a Cdr event seen later (the AMI follower settles it as usual; nothing to do here);
2. Asterisk's CDR store, when configured (cdr_csv's Master.csv), read by the caller and
   passed in as `find_cdr`;
3. otherwise it stays held, flagged for a billing user to resolve (release, or charge a
   number of seconds) in the portal or the CLI: never silently dropped or charged.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import delete, select, update

from coobill.errors import BadRequest, UnknownReservation
from coobill.services import ledger
from coobill.services.commands import Disposition, SettleCall, Settlement
from coobill.services.context import BillingContext
from coobill.services.settings import read_settings
from coobill.services.settlement import settle_call
from coobill.storage.tables import Reservation

log = logging.getLogger("coobill.settlement")

HELD = "held"
FLAGGED = "flagged"


@dataclass(frozen=True, slots=True)
class HeldFunds:
    uniqueid: str
    extension: str
    number: str
    channel: str
    amount: Decimal
    limit_seconds: int | None
    rate: str
    state: str
    note: str
    since: datetime


def _view(r: Reservation) -> HeldFunds:
    return HeldFunds(
        uniqueid=r.uniqueid, extension=r.extension_number, number=r.number, channel=r.channel,
        amount=r.amount, limit_seconds=r.limit_seconds, rate=r.rate_label, state=r.state,
        note=r.note, since=r.created_at,
    )


async def list_held(ctx: BillingContext, *, state: str | None = None) -> list[HeldFunds]:
    query = select(Reservation).order_by(Reservation.created_at, Reservation.id)
    if state is not None:
        query = query.where(Reservation.state == state)
    async with ctx.uow() as uow:
        return [_view(r) for r in (await uow.session.execute(query)).scalars()]


CdrLookup = Callable[[str], Awaitable[SettleCall | None]]
LiveLookup = Callable[[], Awaitable[Collection[str]]]


async def reconcile(
    ctx: BillingContext,
    live_uniqueids: Collection[str],
    *,
    asked_at: datetime | None,
    find_cdr: CdrLookup | None = None,
    still_live: LiveLookup | None = None,
) -> tuple[list[str], list[str]]:
    """Settle or flag the holds whose channel is no longer live. `asked_at` is when the live
    list was asked for (PBX local time): holds made after it are left alone, their channel may
    simply be newer than the list. Wall-clock dates go wrong when the clock jumps, so a caller
    that can ask the PBX again passes `still_live` instead (and no `asked_at`): the holds are
    read first, then the PBX is asked, and a channel up at that moment is live whatever the
    dates say (it existed before its AGI request made the hold). Returns (settled uniqueids,
    flagged uniqueids)."""
    query = select(Reservation).where(Reservation.pbx == ctx.config.pbx.identity())
    if asked_at is not None:
        query = query.where(Reservation.created_at < asked_at - timedelta(seconds=1))
    async with ctx.uow() as uow:
        orphans = (await uow.session.execute(query)).scalars().all()
        orphans = [r for r in orphans if r.uniqueid not in live_uniqueids]
    if orphans and still_live is not None:
        live_now = await still_live()
        orphans = [r for r in orphans if r.uniqueid not in live_now]
    settled: list[str] = []
    flagged: list[str] = []
    for held in orphans:
        evidence = await find_cdr(held.uniqueid) if find_cdr is not None else None
        if evidence is not None:
            await settle_call(ctx, evidence)
            settled.append(held.uniqueid)
            continue
        if held.state != FLAGGED:
            async with ctx.uow() as uow:
                await uow.session.execute(
                    update(Reservation)
                    .where(Reservation.id == held.id)
                    .values(state=FLAGGED, note="channel gone and its end was missed")
                )
                await uow.commit()
            log.warning(
                "settlement.flagged uniqueid=%s ext=%s held=%s reason=end_missed",
                held.uniqueid, held.extension_number, held.amount,
            )
        flagged.append(held.uniqueid)
    return settled, flagged


async def release(ctx: BillingContext, uniqueid: str) -> None:
    """Release a hold without charging: the billing user decided the call cost nothing."""
    async with ctx.uow() as uow:
        held = (
            await uow.session.execute(select(Reservation).where(Reservation.uniqueid == uniqueid))
        ).scalar_one_or_none()
        if held is None:
            raise UnknownReservation(f"no funds are held for call {uniqueid}", field="uniqueid")
        await uow.session.run_sync(
            lambda session: ledger.release_hold(session, held.extension_id, held.amount)
        )
        await uow.session.execute(delete(Reservation).where(Reservation.id == held.id))
        await uow.commit()
    log.info("settlement.released uniqueid=%s by=billing_user", uniqueid)


async def release_if_unsettled(ctx: BillingContext, uniqueid: str) -> bool:
    """Release the hold of a call that never dialled; False when there is none (settled)."""
    def work(session):  # type: ignore[no-untyped-def]
        held = session.execute(
            select(Reservation.id, Reservation.extension_id, Reservation.amount)
            .where(Reservation.uniqueid == uniqueid)
        ).first()
        if held is None:
            return False
        ledger.release_hold(session, held.extension_id, held.amount)
        session.execute(delete(Reservation).where(Reservation.id == held.id))
        return True

    return await ctx.uow.run(work)


async def charge(ctx: BillingContext, uniqueid: str, seconds: int) -> Settlement | None:
    """Resolve a hold by charging `seconds` of talk at the price the call was allowed at."""
    if seconds < 0:
        raise BadRequest("seconds: must not be negative", field="seconds")
    async with ctx.uow() as uow:
        held = (
            await uow.session.execute(select(Reservation).where(Reservation.uniqueid == uniqueid))
        ).scalar_one_or_none()
        if held is None:
            raise UnknownReservation(f"no funds are held for call {uniqueid}", field="uniqueid")
        now = (await read_settings(uow)).local(ctx.clock())
    answered = seconds > 0
    return await settle_call(
        ctx,
        SettleCall(
            uniqueid=uniqueid, caller_extension=held.extension_number, caller_name="",
            dialled_number=held.number, start=held.created_at,
            answer=now - timedelta(seconds=seconds) if answered else None, end=now,
            billable_seconds=seconds,
            disposition=Disposition.ANSWERED if answered else Disposition.NO_ANSWER,
            evidence="manual",
        ),
    )
