"""What a channel's Dials cost, by the evidence: its Cdrs, its events, or both.

Pure functions over the tracker's state of one channel that is over (ami/channels.py); the
rules - Asterisk's billsec unless the events measure the dialled party better, a Dial of
unknown cost left out so its hold is flagged - are given in ami/calls.py's docstring.
"""

from __future__ import annotations

from collections.abc import Container
from datetime import datetime, timedelta

from coobill.ami.cdr import CdrRecord, talk_through_a_transfer, trunk_of_channel
from coobill.ami.channels import Channel, Leg
from coobill.ami.events import DIAL_STATUS, utc
from coobill.services.commands import DialOutcome, Disposition

__all__ = ["dials_of_channel"]


def dials_of_channel(
    ch: Channel, *, whole: bool, gated_names: Container[str]
) -> tuple[DialOutcome, ...]:
    """What each Dial of a channel that is over cost, by the best evidence there is (the
    module docstring of ami/calls.py says which); `whole`: its life was followed whole."""
    if not ch.legs:  # known from its Cdrs alone
        token = ch.authorizations[0][0] if len(ch.authorizations) == 1 else None
        outcomes: list[DialOutcome] = []
        went_on: datetime | None = None  # the end of a Dial whose callee talked on
        for c in sorted(ch.cdrs, key=_started):
            if went_on is not None and c.start is not None and c.start >= went_on:
                continue  # made while that callee talked on: an attended transfer's
            outcome, talked_on = _from_cdr_alone(ch, c, token)
            if talked_on and c.end is not None:
                went_on = c.end
            outcomes.append(outcome)
        return tuple(outcomes)
    legs = [leg for leg in ch.legs.values()
            if not _into_a_gated_local_channel(ch, leg, gated_names)]
    seen: list[DialOutcome | None] = [_outcome(ch, leg, whole) for leg in legs]
    # An authorization one of whose Dials is unknown (None: no evidence of its cost) is
    # not closed by its other, unanswered Dials: their record at cost 0 would settle its
    # hold for nothing. Left out, the hold is flagged.
    unknown = {leg.authorization for leg, o in zip(legs, seen, strict=True) if o is None}
    if not whole and not ch.cdrs_out:
        # Not followed whole and no Cdr: a Dial may have gone out unseen after the ones seen
        # (a failover's answered one, in a gap) - unanswered ones do not close the hold.
        answered = {o.authorization for o in seen
                    if o is not None and o.disposition == Disposition.ANSWERED}
        unknown |= {leg.authorization for leg in legs if leg.authorization} - answered
    outcomes = [o for o in seen if o is not None and not (
        o.disposition != Disposition.ANSWERED and o.authorization in unknown)]
    if not whole:
        # Dial Cdrs of no DialBegin seen: Dials whose events fell into a gap. (Followed
        # whole, such a Cdr is no Dial of its own: an attended transfer's consultation; so
        # is one made once a leg's own Cdr ended while that leg talked on.)
        matched = {id(ch.cdr_of(leg)) for leg in ch.legs.values()}
        transferred = [cdr.end for leg in legs if (cdr := ch.cdr_of(leg)) is not None
                       and cdr.end is not None and (_outlived(ch, leg) or _rows_beyond(ch, cdr))]
        outcomes += [c.outcome() for c in sorted(ch.cdrs, key=_started)
                     if id(c) not in matched and not any(
                         c.start is not None and c.start >= end for end in transferred)]
    return tuple(outcomes)


def _from_cdr_alone(
    ch: Channel, cdr: CdrRecord, token: str | None
) -> tuple[DialOutcome, bool]:
    """A Dial known from its Cdr alone, and whether the channel it reached talked on after
    the caller left (a transfer). Then its talk is the caller's time answered - from the
    Dial's answer to the caller's last Cdr's end, on the CDRs' clock - and the time the
    reached channel stayed up after the caller's Hangup, on the events' clock; or, the
    caller's Hangup lost, as long as the rows posted for it afterwards say (their billsec,
    as ami/cdr_store.py reads Master.csv: the Local ;1 half it was bridged to posts one)."""
    bound = ch.bounds.get(token or "")
    ended = ch.waiting.get(cdr.destination_channel)
    after = _after_caller(ch, ended, ch.waiting_rx.get(cdr.destination_channel)) or 0.0
    if cdr.answer is None or ch.last_cdr_end is None:
        return cdr.outcome(authorization=token), False
    later = _rows_beyond(ch, cdr)
    if later and (ch.hung_up_at is None or ch.end_assumed):
        # The caller's Hangup lost (or only known as gone by the PBX's listing): the rows.
        talk = max(talk_through_a_transfer(cdr.answer, ch.last_cdr_end, later),
                   cdr.billable_seconds)
        return cdr.outcome(authorization=token,
                           billable_seconds=talk if bound is None else min(talk, bound),
                           end=max(r.end for r in later if r.end is not None)), True
    if after >= 1:
        talk = _talked_on(ch, cdr, after) or cdr.billable_seconds
        return cdr.outcome(authorization=token,
                           billable_seconds=talk if bound is None else min(talk, bound),
                           end=ch.last_cdr_end + timedelta(seconds=after),
                           evidence="events"), True
    return cdr.outcome(authorization=token), False  # no later than the caller


def _rows_beyond(ch: Channel, cdr: CdrRecord) -> list[CdrRecord]:
    """The Cdrs of other channels, started once this Dial's Cdr ended, that name the channel
    it reached: what that channel talked on after a transfer (Channel.beyond)."""
    return [r for r in ch.beyond if r.start is not None and r.end is not None
            and cdr.end is not None and r.start >= cdr.end
            and cdr.destination_channel in (r.destination_channel, r.channel)]


def _into_a_gated_local_channel(ch: Channel, leg: Leg, gated_names: Container[str]) -> bool:
    """A Dial of a Local channel whose other half the gate allowed (a phone dialling
    Local/9…@coobill-outbound): that half's own Dial is the call; this one is not."""
    name = leg.dest_channel
    if not ch.authorizations and name.lower().startswith("local/") and name.endswith(";1"):
        return name[:-1] + "2" in gated_names
    return False


def _outcome(ch: Channel, leg: Leg, whole: bool) -> DialOutcome | None:
    cdr = ch.cdr_of(leg)
    talk = _talk(ch, leg)
    if leg.answered and ((talk is None and cdr is None) or (leg.followed and leg.ended_at is None)):
        # Answered, its end lost (the PBX no longer lists the channel, its Hangup never came):
        # no evidence of what it cost - its caller's end or Cdr is not its end, were it
        # transferred.
        return None
    if not leg.answered and not leg.status and cdr is None and not whole:
        # Its DialEnd never came (Asterisk posts one for every Dial, answered or not) and
        # the channel was not followed whole: the answer fell into a gap or a restart. A
        # Hangup says the Dial ended, not that nobody talked - so no evidence of what it
        # cost, and its hold is flagged rather than settled at nothing.
        return None
    if not whole and cdr is not None and (ch.hung_up_at is None or ch.end_assumed) \
            and _rows_beyond(ch, cdr):
        # Its caller's Hangup lost, and the leg talked on after the caller's Cdr ended (a
        # transfer): as long as the rows posted for that leg afterwards say.
        return _from_cdr_alone(ch, cdr, leg.authorization)[0]
    bound = ch.bounds.get(leg.authorization or "")
    if talk is None and cdr is not None and not leg.status and _outlived(ch, leg):
        # Its answer fell into a gap, and it talked on after the caller left (transferred):
        # the CDR's answer to the caller's last CDR, then the time it stayed up after.
        talk = _talked_on(ch, cdr, _after_caller(ch, leg.ended_at, leg.ended_rx))
    if talk is not None and bound is not None:
        talk = min(talk, bound)
    if cdr is not None and not _events_measure_better(ch, leg, cdr, talk):
        billsec = cdr.billable_seconds if bound is None else min(cdr.billable_seconds, bound)
        return cdr.outcome(authorization=leg.authorization, billable_seconds=billsec)
    end = leg.ended_at if leg.ended_at is not None else ch.hung_up_at
    if talk is not None:
        disposition = Disposition.ANSWERED
    elif cdr is not None:
        disposition = cdr.disposition
    else:
        disposition = DIAL_STATUS.get(leg.status, Disposition.NO_ANSWER)
    return DialOutcome(
        leg=cdr.destination_channel if cdr is not None else leg.dest_channel,
        dialled_number=cdr.destination if cdr is not None else ch.exten,
        start=cdr.start if cdr is not None else utc(ch.began),
        answer=utc(leg.answered_at) if leg.answered_at is not None else None,
        end=utc(end) if end is not None else None,
        billable_seconds=talk or 0, disposition=disposition,
        trunk=trunk_of_channel(leg.dest_channel) if leg.dest_channel else None,
        authorization=leg.authorization, evidence="events",
    )


def _events_measure_better(ch: Channel, leg: Leg, cdr: CdrRecord, talk: int | None) -> bool:
    """Whether the events measure the dialled party's talk where the CDR does not.
    Longer than the CDR by more than a second: the call went on past the caller's CDR (a
    transfer); events that reach us late can only look shorter, never longer. Shorter:
    the CDR counts from the caller's earlier answer (a dialplan that answers before Dial)
    - seen when the CDR's own answer comes sooner after its start than the dialled party
    answered after the Dial began (late events only shorten that ring), or believed when
    Asterisk stamped the events itself (timestampevents = yes)."""
    if talk is None:
        return False
    if talk > cdr.billable_seconds + 1 or (talk > cdr.billable_seconds and _outlived(ch, leg)):
        return True
    if talk >= cdr.billable_seconds - 1:
        return False
    if cdr.start is not None and cdr.answer is not None and leg.answered_at is not None \
            and leg.dialled_at is not None:
        cdr_ring = (cdr.answer - cdr.start).total_seconds()
        if cdr_ring < (leg.answered_at - leg.dialled_at) - 1:
            return True
    return leg.answered_tick is None and (
        leg.ended_tick is None if leg.ended_at is not None else ch.hung_up_tick is None)


def _talked_on(ch: Channel, cdr: CdrRecord, after: float | None) -> int | None:
    """A Dial whose callee talked on after the caller left: from the CDR's answer to the
    caller's last CDR's end (the CDRs' clock), then the `after` seconds the callee stayed up
    after the caller's end (_after_caller); never less than the CDR's billsec."""
    if after is None or cdr.answer is None or ch.last_cdr_end is None:
        return None
    before = (ch.last_cdr_end - cdr.answer).total_seconds()
    return max(int(before + after), cdr.billable_seconds)


def _after_caller(ch: Channel, ended: float | None, ended_rx: float | None) -> float | None:
    """How long a channel the caller's Dial reached stayed up after the caller's end, on one
    clock: the two Hangups' times (both Asterisk's stamps, or both when they reached us) - or,
    the caller's end only assumed (the PBX no longer listed it: reconcile, expect), when each
    reached us, on the monotonic clock: the assumed end is the daemon's, the Hangup's stamp
    the PBX's, and a PBX clock ahead of the daemon's must not be billed as talk."""
    if ended is None or ch.hung_up_at is None:
        return None
    if ch.end_assumed:
        if ended_rx is None or ch.hung_up_rx is None:
            return None
        return max(ended_rx - ch.hung_up_rx, 0.0)
    return ended - ch.hung_up_at


def _outlived(ch: Channel, leg: Leg) -> bool:
    """The dialled party hung up a second or more after the caller: the caller transferred
    it, and the caller's CDR ended at the transfer, so even one second more is talk the CDR
    lacks. (A caller hanging up ends its callee within milliseconds.) On one clock: both
    Hangups stamped by Asterisk, or both by us as they arrived."""
    if leg.ended_at is None or ch.hung_up_at is None:
        return False
    if ch.end_assumed and leg.ended_rx is not None and ch.hung_up_rx is not None:
        # The PBX listed the leg up when it no longer listed the caller (CallTracker.reconcile).
        return leg.ended_rx >= ch.hung_up_rx
    if leg.ended_tick is not None and ch.hung_up_tick is not None:
        return leg.ended_tick - ch.hung_up_tick >= 1.0
    stamped = leg.ended_tick is None and ch.hung_up_tick is None
    return stamped and leg.ended_at - ch.hung_up_at >= 1.0


def _talk(ch: Channel, leg: Leg) -> int | None:
    """The dialled party's talk in whole seconds (truncated, as main/cdr.c truncates
    billsec), from its answer to its own hangup (or the caller's); None unanswered."""
    if leg.answered_at is None:
        return None
    end, end_tick = (leg.ended_at, leg.ended_tick) if leg.ended_at is not None \
        else (ch.hung_up_at, ch.hung_up_tick)
    if end is None:
        return None
    seconds = end - leg.answered_at
    if leg.answered_tick is not None and end_tick is not None:
        seconds = end_tick - leg.answered_tick  # both ours: the monotonic clock
    return max(int(seconds), 0)


def _started(cdr: CdrRecord) -> datetime:
    # A sort key: the CDR's times are the PBX's local wall clock, compared zone-less.
    return cdr.start.replace(tzinfo=None) if cdr.start else datetime.min  # noqa: DTZ901
