"""Live calls' holds: listing them, reconciling them with the PBX, resolving flagged ones.

After a restart or an AMI outage the daemon asks Asterisk which channels are live. An open
hold whose channel is gone, and that no followed channel will settle, is settled from the best
evidence of its channel's Dials, in order:
1. a Cdr event seen later (the AMI follower settles it as usual; nothing to do here);
2. Asterisk's CDR store, when configured (every Master.csv row of the channel), read by the
   caller and passed in as `find_cdr`; rows that show no Dial release the hold;
3. otherwise it stays held, flagged for a billing user to resolve (release, or charge a
   number of seconds) in the portal or the CLI: never silently dropped or charged.
A hold whose channel is live but not followed (it outlived a restart) is returned to the
caller, to follow that channel to its end.

Only a flagged hold can be resolved by hand: a live call's hold is the evidence's to close.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coobill.errors import BadRequest, HoldNotSettled, UnknownReservation
from coobill.services import holds
from coobill.services.bounds import record_id
from coobill.services.commands import (
    DialOutcome,
    Disposition,
    SettleChannel,
    Settlement,
)
from coobill.services.context import BillingContext
from coobill.services.settings import billing_settings
from coobill.services.settlement import settle_channel
from coobill.storage import ledger_repo
from coobill.storage.tables import Reservation

log = logging.getLogger("coobill.settlement")

HELD = holds.HELD
FLAGGED = holds.FLAGGED
MAX_CHARGE_SECONDS = 86_400  # a charge by hand of more than a day is a typing error


@dataclass(frozen=True, slots=True)
class HeldFunds:
    id: int
    uniqueid: str
    pbx: str
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
        id=r.id, uniqueid=r.uniqueid, pbx=r.pbx, extension=r.extension_number, number=r.number,
        channel=r.channel, amount=r.amount, limit_seconds=r.limit_seconds, rate=r.rate_label,
        state=r.state, note=r.note, since=r.created_at,
    )


async def count_open(ctx: BillingContext) -> int:
    """How many holds are open (held or flagged) on this ledger: the live_reservations gauge."""
    async with ctx.uow.read() as uow:
        count = (await uow.session.execute(
            select(func.count()).select_from(Reservation)
            .where(Reservation.state.in_(holds.OPEN)))).scalar_one()
    return int(count)


async def list_held(ctx: BillingContext, *, state: str | None = None) -> list[HeldFunds]:
    """The open holds (held and flagged), or those in one state."""
    async with ctx.uow.read() as uow:
        return [_view(r) for r in await ledger_repo.holds_in(uow.session,
                                                             [state] if state else holds.OPEN)]


CdrLookup = Callable[[Collection[str]], Awaitable[dict[str, SettleChannel]]]
LiveLookup = Callable[[], Awaitable[Collection[str]]]


@dataclass(frozen=True, slots=True)
class Reconciled:
    settled: list[str]
    flagged: list[str]
    # Live channels holding funds (uniqueid -> their holds' tokens): follow them.
    live: dict[str, list[str]]
    # Of those, the channels gone whose answered Dial's leg is still up (the caller
    # transferred it): uniqueid -> the names of those legs, to follow until they hang up.
    talking_on: dict[str, list[str]] = field(default_factory=dict)
    # Of those, with `rows_to_come`: the channels gone whose answered Dials' legs the PBX no
    # longer lists - uniqueid -> those legs, over, to be settled from the file a Cdr grace on.
    rows_awaited: dict[str, list[str]] = field(default_factory=dict)


async def reconcile(
    ctx: BillingContext,
    live_uniqueids: Collection[str],
    *,
    asked_at: datetime | None,
    find_cdr: CdrLookup | None = None,
    still_live: LiveLookup | None = None,
    rows_to_come: bool = False,
) -> Reconciled:
    """Settle or flag the open holds whose channel is no longer live. `asked_at` is when the
    live list was asked for (PBX local time): holds made after it are left alone, their
    channel may simply be newer than the list. Wall-clock dates go wrong when the clock jumps,
    so a caller that can ask the PBX again passes `still_live` instead (and no `asked_at`):
    the holds are read first, then the PBX is asked, and a channel up at that moment is live
    whatever the dates say (it existed before its AGI request made the hold).

    `rows_to_come`: a caller that follows channels (the daemon) settles an answered call
    found in the file a Cdr grace later, not now. Its leg may have hung up a moment before
    the PBX was asked, and the CDR engine writes the rows of that end (how long a transferred
    leg talked on) after the channel has left the PBX's list: read now, the file would say
    the call ended at the transfer."""
    made_before = asked_at - timedelta(seconds=1) if asked_at is not None else None
    channels: dict[str, list[str]] = defaultdict(list)
    async with ctx.uow.read() as uow:
        for uniqueid, token in await ledger_repo.open_hold_tokens(
                uow.session, ctx.config.pbx.identity(), made_before):
            channels[uniqueid].append(token)
    live = {u: t for u, t in channels.items() if u in live_uniqueids}
    gone = [u for u in channels if u not in live_uniqueids]
    if gone and still_live is not None:
        live_now = await still_live()
        live.update({u: channels[u] for u in gone if u in live_now})
        gone = [u for u in gone if u not in live_now]
    evidence = await find_cdr(gone) if find_cdr is not None and gone else {}
    settled: list[str] = []
    flagged: list[str] = []
    talking_on: dict[str, list[str]] = {}
    rows_awaited: dict[str, list[str]] = {}
    for uniqueid in gone:
        found = evidence.get(uniqueid)
        answered = [] if found is None else answered_legs(found)
        up = [leg for leg in answered if leg in live_uniqueids]
        if up:
            # The channel it dialled is still up (the caller transferred it): the call goes
            # on, and so does its hold, until that leg hangs up.
            live[uniqueid] = channels[uniqueid]
            talking_on[uniqueid] = up
            continue
        if answered and rows_to_come:
            live[uniqueid] = channels[uniqueid]
            rows_awaited[uniqueid] = answered
            continue
        if found is not None:
            await settle_channel(ctx, found)
            settled.append(uniqueid)
            continue
        note = "channel gone and its end was missed"
        await settle_channel(ctx, SettleChannel(uniqueid, "", "", (), leftover="flag", note=note))
        flagged.append(uniqueid)
    return Reconciled(settled, flagged, live, talking_on, rows_awaited)


def answered_legs(found: SettleChannel) -> list[str]:
    """The channels its answered Dials reached, by name (each may have been transferred)."""
    return [d.leg for d in found.dials if d.disposition == Disposition.ANSWERED and d.leg]


def talking_legs(found: SettleChannel, live: Collection[str]) -> list[str]:
    """The channels this evidence's answered Dials reached that are still up (listed by
    name): a transferred call whose external party talks on."""
    return [leg for leg in answered_legs(found) if leg in live]


async def _flagged_hold(ctx: BillingContext, uniqueid: str, hold_id: int | None) -> Reservation:
    """The one flagged hold a billing user means; refused for a hold that is not flagged."""
    if hold_id is not None:
        record_id(hold_id, "hold")  # beyond the id column's range: an overflow, not a lookup
    async with ctx.uow.read() as uow:
        found = await ledger_repo.open_holds_of_channel(uow.session, uniqueid, hold_id)
    if not found:
        raise UnknownReservation(f"no funds are held for call {uniqueid}", field="uniqueid")
    flagged = [h for h in found if h.state == FLAGGED]
    if not flagged:  # a live call's: its own evidence settles it
        raise UnknownReservation(f"call {uniqueid} has no flagged hold to resolve",
                                 field="uniqueid")
    if len(flagged) > 1:
        ids = ", ".join(str(h.id) for h in flagged)
        raise BadRequest(f"uniqueid: call {uniqueid} has several flagged holds ({ids}): "
                         "say which (--hold ID)", field="hold")
    return flagged[0]


async def release(ctx: BillingContext, uniqueid: str, *, hold_id: int | None = None,
                  by: str = "billing_user") -> Decimal:
    """Release a flagged hold without charging: the billing user decided the call cost
    nothing. What it gave back."""
    hold = await _flagged_hold(ctx, uniqueid, hold_id)

    def work(session: Session) -> Decimal | None:
        closed = holds.close(session, hold.id, holds.RELEASED,
                             at=billing_settings(session).local(ctx.clock()),
                             note=f"released by {by}"[:255])
        return closed.amount if closed is not None else None

    given_back = await ctx.uow.run(work)
    if given_back is None:  # closed meanwhile (its Cdr came): nothing of it is left to move
        raise UnknownReservation(f"no funds are held for call {uniqueid}", field="uniqueid")
    log.info("settlement.released uniqueid=%s hold=%s by=%s amount=%s", uniqueid, hold.id, by,
             given_back)
    return given_back


def charge_seconds(text: object) -> int:
    """The seconds a billing user typed to charge a flagged hold: ASCII digits, 0 to a day."""
    value = str(text if text is not None else "").strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 6:
        raise BadRequest(f"seconds: a whole number of seconds, 0 to {MAX_CHARGE_SECONDS}",
                         field="seconds")
    return charge_seconds_in_range(int(value))


def charge_seconds_in_range(seconds: int) -> int:
    if not 0 <= seconds <= MAX_CHARGE_SECONDS:
        raise BadRequest(f"seconds: a whole number of seconds, 0 to {MAX_CHARGE_SECONDS}",
                         field="seconds")
    return seconds


async def charge(ctx: BillingContext, uniqueid: str, seconds: int, *,
                 hold_id: int | None = None) -> Settlement:
    """Resolve a flagged hold by charging `seconds` of talk at the price the call was allowed
    at (capped by its limit, as a Dial's would be). The one command the CLI, the portal and
    the API call; HoldNotSettled when the hold's own evidence closed it meanwhile."""
    charge_seconds_in_range(seconds)
    hold = await _flagged_hold(ctx, uniqueid, hold_id)
    async with ctx.uow() as uow:
        now = (await billing_settings(uow)).local(ctx.clock())
    answered = seconds > 0
    dial = DialOutcome(
        leg=f"hold:{hold.id}", dialled_number=hold.number, start=hold.created_at,
        answer=now - timedelta(seconds=seconds) if answered else None, end=now,
        billable_seconds=seconds,
        disposition=Disposition.ANSWERED if answered else Disposition.NO_ANSWER,
        authorization=hold.token, evidence="manual",
    )
    done = await settle_channel(ctx, SettleChannel(
        uniqueid, hold.extension_number, "", (dial,), leftover="keep", pbx=hold.pbx))
    if not done:
        raise HoldNotSettled(f"call {uniqueid} could not be settled", field="uniqueid")
    return done[0]


__all__ = [
    "HeldFunds",
    "Reconciled",
    "charge",
    "charge_seconds",
    "count_open",
    "list_held",
    "reconcile",
    "release",
    "talking_legs",
]
