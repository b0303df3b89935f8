"""Commands the adapters hand to the service layer, and the answers they get back.

Commands are imperative (AuthorizeCall, SettleCall); each is a small frozen dataclass so the
gate, the AMI follower, the portal and the CLI speak to the ledger in the same words.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum


class Reason(StrEnum):
    """The one word the gate puts in COOBILL_REASON."""

    OK = "ok"
    UNBILLED = "unbilled"
    NO_RATE = "no_rate"
    LOCKED = "locked"
    NO_FUNDS = "no_funds"
    UNKNOWN_EXTENSION = "unknown_extension"
    BAD_REQUEST = "bad_request"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class AuthorizeCall:
    """Asterisk asks whether `extension` may dial `number` on the channel `uniqueid`."""

    uniqueid: str
    extension: str
    number: str
    channel: str = ""
    caller_name: str = ""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The gate's answer. `limit_seconds` None means unlimited (nothing to enforce)."""

    allowed: bool
    reason: Reason
    limit_seconds: int | None = None
    held: Decimal = Decimal("0.0000")
    rate_id: int | None = None
    funds: Decimal | None = None

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
class SettleCall:
    """A call has ended: record it, debit its cost, release what it held. Idempotent on uniqueid.

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


@dataclass(frozen=True, slots=True)
class Settlement:
    """What settling a call did: its cost, and False in `debited` when it was a repeat."""

    uniqueid: str
    cost: Decimal
    debited: bool
    balance_after: Decimal | None = None
    rate_id: int | None = None
