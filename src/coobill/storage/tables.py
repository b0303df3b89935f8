"""The ledger's tables. Money columns hold integer ten-thousandths (see coobill.money).

Length: past ~350 lines because this is the one place the schema is declared, one table
after another (the migrations follow it); nothing here decides anything."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from coobill.money import from_units, to_units

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Money(TypeDecorator[Decimal]):
    """Decimal in Python, integer ten-thousandths in the database: exact on every backend."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, int):
            return value
        return to_units(Decimal(value))

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        return None if value is None else from_units(int(value))


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def table(model: type[Base]) -> Table:
    """The Core table of a mapped class, for statements built once (DeclarativeBase types
    `__table__` as any FromClause)."""
    return cast(Table, model.__table__)


class Extension(Base):
    __tablename__ = "extension"
    # Negative reserved funds would be spendable funds: the database refuses them.
    __table_args__ = (CheckConstraint("reserved >= 0", name="reserved_not_negative"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    billing_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    payment: Mapped[str] = mapped_column(String(16), default="prepaid")
    credit_limit: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    balance: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    total_recharged: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    # What the extension's live calls hold: the sum of its reservations, kept beside the
    # balance so the gate decides on one row (`coobill audit` checks the two agree).
    reserved: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # Spend caps (services/caps.py); None: the site's default (a setting), if any.
    cap_daily: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    cap_monthly: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    max_call_cost: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    max_price_minute: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    # What its calls were debited on the day (month) `spent_day_of` ("YYYY-MM-DD";
    # `spent_month_of`, "YYYY-MM") in the PBX's time zone: kept on the row, beside `reserved`,
    # so that the gate's one conditional update checks the caps as it checks the funds.
    spent_day: Mapped[Decimal] = mapped_column(Money, default=Decimal(0), server_default="0")
    spent_day_of: Mapped[str] = mapped_column(String(10), default="", server_default="")
    spent_month: Mapped[Decimal] = mapped_column(Money, default=Decimal(0), server_default="0")
    spent_month_of: Mapped[str] = mapped_column(String(7), default="", server_default="")
    # Low-balance alert (services/low_balance.py): the threshold (None: the site's default)
    # and when the funds last fell below it (None: armed, they are above it).
    low_balance_threshold: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    low_balance_since: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class RefusedCall(Base):
    """One DENY of the gate: when, who asked to call what, why, and how long the gate took
    to say so. Written after the answer, in batches (services/refused.py); kept for
    `[records] refused_keep_days` and at most `refused_max_rows` rows."""

    __tablename__ = "refused_call"
    __table_args__ = (Index("ix_refused_call_at_id", "at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime)  # the PBX's local time, as call records
    pbx: Mapped[str] = mapped_column(String(64), default="", server_default="")
    uniqueid: Mapped[str] = mapped_column(String(64), default="")
    extension: Mapped[str] = mapped_column(String(32), default="")
    number: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str] = mapped_column(String(32))
    latency_us: Mapped[int] = mapped_column(Integer, default=0)


class Rate(Base):
    __tablename__ = "rate"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    remark: Mapped[str] = mapped_column(String(255), default="")
    prefix: Mapped[str] = mapped_column(String(32), default="", index=True)
    number_length: Mapped[int] = mapped_column(Integer, default=0)
    initial_cost: Mapped[Decimal] = mapped_column(Money)
    initial_seconds: Mapped[int] = mapped_column(Integer)
    rate: Mapped[Decimal] = mapped_column(Money)
    period_seconds: Mapped[int] = mapped_column(Integer)
    start_time: Mapped[str] = mapped_column(String(5), default="00:00")
    end_time: Mapped[str] = mapped_column(String(5), default="23:59")
    # Comma-separated extension numbers, or "*" for every extension.
    extensions: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # Its calendar (rating/calendar.py): "" every day, else "mon,sat,..."; any|only|except.
    days: Mapped[str] = mapped_column(String(32), default="", server_default="")
    holidays: Mapped[str] = mapped_column(String(8), default="any", server_default="any")
    # The span of its deck, PBX local time: from included, until excluded; NULL is open.
    valid_from: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    valid_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # Charge each period at the rate in force when it starts (rating/split.py).
    split: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # NULL: a sell rate (what an extension pays). A trunk's name, or "*" for every trunk: a
    # buy rate, what the carrier behind that trunk charges (margin = sell - buy).
    trunk: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Holiday(Base):
    """A date of the PBX's holiday calendar; `yearly` ones come back every year (their year
    is kept as written, only month and day count)."""

    __tablename__ = "holiday"
    __table_args__ = (UniqueConstraint("day", "yearly", name="uq_holiday_day_yearly"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    yearly: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str] = mapped_column(String(64), default="")


class LedgerEntry(Base):
    """One change of one balance. Append-only: the balance is the sum of its entries, and each
    entry carries a MAC chained to the one before it (services/ledger_seal.py)."""

    __tablename__ = "ledger_entry"
    __table_args__ = (UniqueConstraint("kind", "reference", name="uq_ledger_entry_kind_reference"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    extension_id: Mapped[int] = mapped_column(ForeignKey("extension.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # recharge | call_debit | adjustment
    amount: Mapped[Decimal] = mapped_column(Money)  # signed: + credits the balance
    balance_after: Mapped[Decimal] = mapped_column(Money)
    # What the entry is for: a recharge id, a call's uniqueid. (kind, reference) is unique,
    # which is what makes a call's debit happen once however often it is settled.
    reference: Mapped[str | None] = mapped_column(String(64), nullable=True)
    who: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # HMAC-SHA256 of this entry and the MAC before it, keyed by the ledger key (kept outside
    # the database): a rewrite of the database alone breaks the chain.
    mac: Mapped[str | None] = mapped_column(String(64), nullable=True)


class LedgerHead(Base):
    """The end of the ledger's MAC chain: the last entry, and a MAC of that, so that removing
    the last entries shows too."""

    __tablename__ = "ledger_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    last_entry_id: Mapped[int] = mapped_column(Integer, default=0)
    last_mac: Mapped[str] = mapped_column(String(64), default="")
    entries: Mapped[int] = mapped_column(Integer, default=0)
    mac: Mapped[str] = mapped_column(String(64), default="")


class Recharge(Base):
    __tablename__ = "recharge"
    # Newest first, by (time, id): the records pages and exports read it backwards.
    __table_args__ = (Index("ix_recharge_created_at_id", "created_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    extension_id: Mapped[int] = mapped_column(ForeignKey("extension.id"), index=True)
    balance_before: Mapped[Decimal] = mapped_column(Money)
    amount: Mapped[Decimal] = mapped_column(Money)
    balance_after: Mapped[Decimal] = mapped_column(Money)
    who: Mapped[str] = mapped_column(String(64), default="")
    # "recharge", or "fee": a recurring fee charged (services/fees.py), shown among the
    # recharge records with its negative amount (migration 0009).
    kind: Mapped[str] = mapped_column(String(16), default="recharge", server_default="recharge")
    # A fee's: the reference of its ledger entry (a recharge's entry refers to the record).
    reference: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Call(Base):
    """One Dial of one channel: a gated channel that dials twice makes two records. Known by
    (PBX, the dialling channel's uniqueid, `leg`: the channel it dialled, "" for a channel's
    one record of a Dial nobody answered)."""

    __tablename__ = "call"
    __table_args__ = (
        # Newest first, by (start, id): the records pages and exports read it backwards,
        # from the index alone when nothing else filters (migration 0006).
        Index("ix_call_start_id", "start", "id"),
        Index("ix_call_caller_start", "caller_extension", "start"),
        UniqueConstraint("pbx", "uniqueid", "leg", name="uq_call_pbx_uniqueid_leg"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pbx: Mapped[str] = mapped_column(String(64), default="", server_default="")
    uniqueid: Mapped[str] = mapped_column(String(64), index=True)
    leg: Mapped[str] = mapped_column(String(128), default="", server_default="")
    caller_extension: Mapped[str] = mapped_column(String(32))
    caller_name: Mapped[str] = mapped_column(String(128), default="")
    dialled_number: Mapped[str] = mapped_column(String(64))
    start: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    answer: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    end: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    billable_seconds: Mapped[int] = mapped_column(Integer, default=0)
    trunk: Mapped[str] = mapped_column(String(64), default="")
    rate_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rate_label: Mapped[str] = mapped_column(String(255), default="")
    cost: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    # What the call cost us at its trunk's buy rate; NULL: no buy rate known for it.
    buy_cost: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    disposition: Mapped[str] = mapped_column(String(16))
    gated: Mapped[bool] = mapped_column(Boolean, default=True)
    evidence: Mapped[str] = mapped_column(String(16), default="cdr")
    # The hold (authorization) the call was allowed and charged under; None: ungated.
    reservation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Reservation(Base):
    """Funds held by one authorization of the gate, until evidence closes it (see
    services/holds.py for its life). Closed holds stay, as the record of how they ended."""

    __tablename__ = "reservation"
    __table_args__ = (
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        Index("ix_reservation_pbx_uniqueid", "pbx", "uniqueid"),
        Index("ix_reservation_state", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Made by the gate before it writes, so whatever it wrote can be found and undone even
    # when it gave up waiting for its own transaction.
    token: Mapped[str] = mapped_column(String(32), unique=True)
    uniqueid: Mapped[str] = mapped_column(String(64))
    extension_id: Mapped[int | None] = mapped_column(
        ForeignKey("extension.id"), index=True, nullable=True)
    extension_number: Mapped[str] = mapped_column(String(32))
    number: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(128), default="")
    amount: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    billed: Mapped[bool] = mapped_column(Boolean, default=True)
    limit_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rate_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The tariff the limit was computed from, "initial_cost/initial_seconds/rate/period":
    # a call is charged at the price it was allowed at, even if the rate is edited meanwhile.
    tariff: Mapped[str] = mapped_column(String(128), default="")
    rate_label: Mapped[str] = mapped_column(String(255), default="")
    # A split rate's tariffs over the limit, "offset=tariff;..." after the first (services/
    # hold_tariff.py): what the gate held for, and what settlement charges. "" unsplit.
    tariff_schedule: Mapped[str] = mapped_column(Text, default="", server_default="")
    # The PBX whose call this is ([pbx] name): recovery reconciles only its own PBX's holds.
    pbx: Mapped[str] = mapped_column(String(64), default="", server_default="", index=True)
    # held | flagged (open: `amount` is in the extension's reserved funds);
    # settled | released | undone (closed: nothing held any more)
    state: Mapped[str] = mapped_column(String(16), default="held")
    note: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Setting(Base):
    __tablename__ = "setting"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class User(Base):
    __tablename__ = "portal_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))  # billing | admin
    language: Mapped[str] = mapped_column(String(8), default="en")
    created_at: Mapped[datetime] = mapped_column(DateTime)


class PortalSession(Base):
    """A logged-in portal session; the signed cookie carries its `id`. A session is good
    while its row is here and unexpired (and the cookie's credential is the user's current
    one): logout deletes the row, so a copied cookie ends with it (services/portal_sessions.py)."""

    __tablename__ = "portal_session"

    # secrets.token_urlsafe(32): 43 characters; the cookie's signature guards it as well.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("portal_user.id", ondelete="CASCADE"), index=True
    )
    # UTC, naive: when it began and when it lapses whatever happens (12 h).
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class WebhookEvent(Base):
    """The outbox: one event for the operator's webhooks, written in the transaction of the
    change it tells of (services/outbox.py), delivered by the daemon (daemon/webhooks.py) in
    order of `id` within each extension. Times are UTC (delivery is scheduled by them)."""

    __tablename__ = "webhook_event"
    __table_args__ = (
        Index("ix_webhook_event_state_id", "state", "id"),
        Index("ix_webhook_event_extension_id", "extension", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The receiver's idempotency key: a retried delivery carries the same one.
    key: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    extension: Mapped[str] = mapped_column(String(32), default="")
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # pending (to deliver) | delivered | failed (gave up after webhooks.max_attempts)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime)
    # The configured URLs that have answered 2xx, one per line: a retry skips them.
    delivered_to: Mapped[str] = mapped_column(Text, default="")
    last_error: Mapped[str] = mapped_column(String(255), default="")
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Fee(Base):
    """A recurring fee (services/fees.py): charged by the daemon once per period to one
    extension, or to every billed extension (`extension` "*"). Each charge is a ledger entry of
    kind "fee" whose reference names the fee, the extension and the period, which the
    ledger's unique (kind, reference) makes happen once."""

    __tablename__ = "fee"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    extension: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64), default="")
    amount: Mapped[Decimal] = mapped_column(Money)
    period: Mapped[str] = mapped_column(String(16))  # monthly | weekly
    # A charge that takes the funds below zero: "lock" the extension, or "flag" it (an event).
    over_credit: Mapped[str] = mapped_column(String(16), default="lock")
    # The first period charged is the one this (local) day falls in.
    starts: Mapped[datetime] = mapped_column(DateTime)
    # False once removed: the row stays so that its id (in its charges' references) is never
    # given to another fee (services/fees.py, remove_fee).
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
