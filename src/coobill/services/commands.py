"""Commands the adapters hand to the service layer, and the answers they get back.

Commands are imperative (AuthorizeCall, SettleCall); each is a small frozen dataclass so the
gate, the AMI follower, the portal and the CLI speak to the ledger in the same words.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal


class Reason(StrEnum):
    """The one word the gate puts in COOBILL_REASON."""

    OK = "ok"
    UNBILLED = "unbilled"
    NO_RATE = "no_rate"
    LOCKED = "locked"
    NO_FUNDS = "no_funds"
    # Spend caps (services/caps.py): the day's, the month's; a rate dearer per minute than
    # allowed, or a call whose start costs more than one call may.
    CAP_DAILY = "cap_daily"
    CAP_MONTHLY = "cap_monthly"
    MAX_PRICE = "max_price"
    # The sell rate is below the trunk's buy rate plus billing.min_margin (services/margin.py).
    NO_MARGIN = "no_margin"
    UNKNOWN_EXTENSION = "unknown_extension"
    BAD_REQUEST = "bad_request"
    ERROR = "error"


# How the gate knows who pays (AuthorizeCall.payer_source).
PayerSource = Literal["endpoint", "caller_id"]


@dataclass(frozen=True, slots=True)
class AuthorizeCall:
    """Asterisk asks whether `extension` may dial `number` on the channel `uniqueid`.

    `payer_source` says where `extension` came from: "endpoint", the channel's own endpoint
    (PJSIP/SIP/IAX2: a phone the PBX authenticated, or the extension the call's first leg was
    authorized for); "caller_id", the caller ID of a channel that has no endpoint (Local),
    which whoever set it chose - so it may name only an extension the ledger knows.
    """

    uniqueid: str
    extension: str
    number: str
    channel: str = ""
    caller_name: str = ""
    payer_source: PayerSource = "endpoint"
    # The channel's earlier authorizations the daemon made (their tokens), each with the most
    # talk time its Dial can have had: the channel asks again, so those Dials are over.
    earlier: tuple[tuple[str, int], ...] = ()
    # The trunk the dialplan says it will dial (the optional third AGI argument): its buy
    # rate and billing.min_margin decide no_margin. "": not given, no margin check.
    trunk: str = ""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The gate's answer. `limit_seconds` None means unlimited (nothing to enforce)."""

    allowed: bool
    reason: Reason
    limit_seconds: int | None = None
    held: Decimal = Decimal("0.0000")
    rate_id: int | None = None
    funds: Decimal | None = None
    token: str | None = None  # the hold this ALLOW made (services/holds.py)
    # An ALLOW whose funds at rest are below the extension's low-balance threshold
    # (services/low_balance.py): the channel is told COOBILL_LOW_BALANCE=1.
    low_balance: bool = False

    @classmethod
    def deny(cls, reason: Reason) -> Verdict:
        return cls(allowed=False, reason=reason)

    @classmethod
    def allow_unlimited(cls, reason: Reason) -> Verdict:
        return cls(allowed=True, reason=reason)


class Disposition(StrEnum):
    ANSWERED = "ANSWERED"
    BUSY = "BUSY"
    NO_ANSWER = "NO ANSWER"
    FAILED = "FAILED"
    CANCEL = "CANCEL"
    CONGESTION = "CONGESTION"


@dataclass(frozen=True, slots=True)
class DialOutcome:
    """One Dial of a channel, as the evidence tells it.

    `leg` is the channel the Dial reached (its DestinationChannel), "" for a Dial nobody
    answered; with the PBX and the channel's uniqueid it names the call record. Times are
    naive in the PBX's local time (as Asterisk's CDR gives them) or aware (the service turns
    them into the PBX's time zone as it is set now). `authorization` is the token of the hold
    the Dial went out under, when the daemon saw it; `billable_seconds` is the dialled party's
    talk time (settlement caps it at that hold's limit).
    """

    leg: str
    dialled_number: str
    start: datetime | None
    answer: datetime | None
    end: datetime | None
    billable_seconds: int
    disposition: Disposition
    trunk: str | None = None
    authorization: str | None = None
    evidence: str = "cdr"


@dataclass(frozen=True, slots=True)
class SettleChannel:
    """A channel that dialled (or that the gate allowed) has ended: record each of its Dials,
    debit the answered ones, close its holds.

    `leftover` says what becomes of a hold of the channel that no Dial here went out under:
    "release" when the evidence covers every Dial the channel made (its whole life was seen
    on AMI, or its CDRs came); "flag" when it may not (`note` says why), for a billing user;
    "keep" to leave it as it is (a billing user charging one hold by hand)."""

    uniqueid: str
    caller_extension: str
    caller_name: str
    dials: tuple[DialOutcome, ...]
    leftover: Literal["release", "flag", "keep"] = "release"
    note: str = ""
    # The PBX whose channel this is; None: this daemon's ([pbx] name). A billing user
    # resolving another PBX's flagged hold names that hold's PBX.
    pbx: str | None = None

    def records(self) -> list[DialOutcome]:
        """The call records its Dials make: each answered one; if none was answered, the
        last one, as the channel's single unanswered record (leg "")."""
        answered = [d for d in self.dials if d.disposition == Disposition.ANSWERED]
        if answered:
            return answered
        if not self.dials:
            return []
        return [dataclasses.replace(self.dials[-1], leg="", billable_seconds=0)]

    @property
    def record(self) -> DialOutcome | None:
        """The first of its records (a channel that dialled once: its call)."""
        records = self.records()
        return records[0] if records else None


@dataclass(frozen=True, slots=True)
class SettleCall:
    """One call (one Dial of a channel) has ended: record it, debit its cost, close what its
    channel held. Idempotent. The one-Dial form of SettleChannel, for recovery by hand and
    for tests.

    Times are naive datetimes in the PBX's local time (as Asterisk's CDR gives them).
    `evidence` says where billsec came from: "cdr" (the dialling leg's Cdr event), "events"
    (DialEnd/BridgeEnter to Hangup), "cdr_store" (Asterisk's CDR backend, on recovery).
    """

    uniqueid: str
    caller_extension: str
    caller_name: str
    dialled_number: str
    start: datetime | None
    answer: datetime | None
    end: datetime | None
    billable_seconds: int
    disposition: Disposition
    trunk: str | None = None
    gated: bool = True
    evidence: str = "cdr"
    leg: str = ""

    def as_channel(self) -> SettleChannel:
        dial = DialOutcome(
            leg=self.leg, dialled_number=self.dialled_number, start=self.start,
            answer=self.answer, end=self.end, billable_seconds=self.billable_seconds,
            disposition=self.disposition, trunk=self.trunk, evidence=self.evidence,
        )
        return SettleChannel(self.uniqueid, self.caller_extension, self.caller_name, (dial,))


@dataclass(frozen=True, slots=True)
class Settlement:
    """What settling a call did: its cost, and False in `debited` when it was a repeat."""

    uniqueid: str
    cost: Decimal
    debited: bool
    balance_after: Decimal | None = None
    rate_id: int | None = None
    billable_seconds: int = 0
