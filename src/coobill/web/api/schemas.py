"""The JSON API's bodies, as its OpenAPI schema documents them. Amounts are decimal strings
with at most 4 places ("12.5", "0.0100"): never JSON floats."""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict

from coobill.services.users import MAX_NAME, MAX_PASSWORD


def _not_bool_or_float(value: Any) -> Any:
    # pydantic's lax mode reads JSON true as 1 and 1.0 as 1: never an amount (or a count).
    if isinstance(value, bool):
        raise ValueError("amounts must be given as decimal text, not true or false")
    if isinstance(value, float):
        raise ValueError("amounts must be given as decimal text, not float")
    return value


def _whole_not_bool_or_float(value: Any) -> Any:
    if isinstance(value, bool | float):
        raise ValueError("must be a whole number")
    return value


# A decimal string ("12.5"), or a JSON integer; never a float or a boolean.
Amount = Annotated[str | int, BeforeValidator(_not_bool_or_float)]
Whole = Annotated[int | str, BeforeValidator(_whole_not_bool_or_float)]
Row = TypeVar("Row")


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The login's caps (services/users.py), checked before any work: a longer field is a 400.
UserName = Annotated[str, Field(max_length=MAX_NAME)]
Password = Annotated[str, Field(max_length=MAX_PASSWORD)]


class LoginIn(Body):
    name: UserName
    password: Password


class UserOut(BaseModel):
    id: int
    name: str
    role: Literal["billing", "admin"]
    language: Literal["en", "zh"]


class LoginOut(BaseModel):
    user: UserOut
    csrf_token: str = Field(description="Send it as X-CSRF-Token on every POST and DELETE.")


class LanguageIn(Body):
    language: Literal["en", "zh"]


class UserIn(Body):
    name: UserName
    password: Password
    role: Literal["billing", "admin"]


class PasswordIn(Body):
    password: Password


class ExtensionOut(BaseModel):
    extension: str
    name: str
    billing: bool
    payment: Literal["prepaid", "postpaid"]
    credit_limit: str
    balance: str
    total_recharged: str
    reserved: str = Field(description="Held by calls in progress.")
    funds_available: str
    locked: bool
    # The account controls the extension sets (null: the site's default applies).
    cap_daily: str | None = None
    cap_monthly: str | None = None
    max_call_cost: str | None = None
    max_price_minute: str | None = None
    low_balance: str | None = None
    below_threshold: bool = Field(
        False, description="Its funds at rest are below its low-balance threshold (listings).")
    low_balance_since: str | None = Field(
        None, description="Its funds are below the low-balance threshold since then.")


class ExtensionPage(BaseModel):
    total: int
    items: list[ExtensionOut]


class ExtensionIn(Body):
    """Fields left out (or null) stay as they are. A new number creates the extension."""

    name: str | None = None
    billing: bool | None = None
    payment: Literal["prepaid", "postpaid"] | None = Field(
        None, description="Changing it resets total_recharged, as the appliance does."
    )
    credit_limit: Amount | None = None
    locked: bool | None = None
    cap_daily: Amount | None = Field(None, description='An amount; "" for the default.')
    cap_monthly: Amount | None = Field(None, description='An amount; "" for the default.')
    max_call_cost: Amount | None = Field(None, description='An amount; "" for the default.')
    max_price_minute: Amount | None = Field(None, description='An amount; "" for the default.')
    low_balance: Amount | None = Field(None, description='An amount; "" for the default.')


class BatchEditIn(ExtensionIn):
    """The same changes to each extension; only the fields given are applied."""

    extensions: list[str]


class RechargeIn(Body):
    extensions: list[str] = Field(description="Each is recharged by the same amount.")
    amount: Amount


class RechargeOut(BaseModel):
    extension: str
    balance_before: str
    amount: str
    balance_after: str


class RateIn(Body):
    enabled: bool = True
    remark: str = ""
    prefix: str = ""
    length: Whole = Field(
        0, description="Digits of the whole number dialled, prefix included; 0 matches any length."
    )
    initial_cost: Amount = "0"
    initial_time: Whole = Field(0, description="Seconds the initial cost covers.")
    rate: Amount
    period: Whole = Field(60, description="Billing period, seconds; `rate` is per period.")
    start: str = "00:00"
    end: str = "23:59"
    extensions: list[str] = Field(description='Extension numbers, or ["*"] for all.')
    days: str = Field("", description='Days it applies on, "mon,tue,...,sun"; "" every day.')
    holidays: Literal["any", "only", "except"] = "any"
    valid_from: str | None = Field(None, description='"YYYY-MM-DD HH:MM", PBX time; null: now.')
    valid_until: str | None = Field(None, description="Excluded; null: no end.")
    split: bool = Field(False,
                        description="Charge each period at the rate in force when it starts.")
    trunk: str = Field("", description='A buy rate for this trunk ("*": every trunk); "": a '
                                       "sell rate.")


class RateEditIn(Body):
    """Fields left out stay as they are (enable/disable: {"enabled": false})."""

    enabled: bool | None = None
    remark: str | None = None
    prefix: str | None = None
    length: Whole | None = None
    initial_cost: Amount | None = None
    initial_time: Whole | None = None
    rate: Amount | None = None
    period: Whole | None = None
    start: str | None = None
    end: str | None = None
    extensions: list[str] | None = None
    days: str | None = None
    holidays: Literal["any", "only", "except"] | None = None
    valid_from: str | None = Field(None, description='"" clears it.')
    valid_until: str | None = Field(None, description='"" clears it.')
    split: bool | None = None
    trunk: str | None = None


class RateOut(BaseModel):
    id: int
    enabled: bool
    remark: str
    prefix: str
    length: int
    initial_cost: str
    initial_time: int
    rate: str
    period: int
    start: str
    end: str
    extensions: list[str]
    days: str
    holidays: str
    valid_from: str | None
    valid_until: str | None
    split: bool
    trunk: str


class DeckIn(Body):
    deck: str = Field(description="The CSV text: coobill's layout (as exported) or a carrier's.")
    effective: str | None = Field(None, alias="from",
                                  description='Takes effect at "YYYY-MM-DD HH:MM"; null: now.')
    replace: bool = Field(False, description="Replace every sell rate now.")
    dry_run: bool = Field(False, description="Only say what would change.")
    trunk: str | None = Field(None, description="The deck is this trunk's buy rates (\"*\": every "
                                                "trunk), replacing only them; null: sell rates.")


class DeckRateOut(BaseModel):
    rate: str
    before: str | None
    after: str | None


class DeckImportOut(BaseModel):
    count: int
    effective: str | None
    written: bool
    added: list[DeckRateOut]
    removed: list[DeckRateOut]
    changed: list[DeckRateOut]
    unchanged: int


class HolidayIn(Body):
    day: str = Field(description="YYYY-MM-DD")
    yearly: bool = Field(False, description="Every year on this month and day.")
    name: str = ""


class HolidayOut(BaseModel):
    id: int
    day: str
    yearly: bool
    name: str


class QuoteOut(BaseModel):
    extension: str
    number: str
    at: str
    date: str
    rate_id: int | None = Field(description="null when no rate applies (the call is free).")
    remark: str | None
    prefix: str | None
    seconds: int
    cost: str | None
    funds: str
    limit_seconds: int | None


class RechargeRecordOut(BaseModel):
    time: str
    extension: str
    name: str
    balance_before: str
    amount: str
    balance_after: str
    who: str


class CallRecordOut(BaseModel):
    date: str
    extension: str
    name: str
    callee: str
    billable_time: str = Field(description="The billable seconds as mm:ss (h:mm:ss).")
    billable_seconds: int
    trunk: str
    cost: str
    buy_cost: str = Field(description='At the trunk\'s buy rate; "" when none is known.')
    margin: str = Field(description='cost - buy_cost; "" when the buy cost is not known.')
    disposition: str
    uniqueid: str


class RefusedCallOut(BaseModel):
    date: str
    extension: str
    callee: str
    reason: str = Field(description="The gate's COOBILL_REASON.")
    latency_ms: str = Field(description="How long the gate took to decide, milliseconds.")
    uniqueid: str


class TrunkRowOut(BaseModel):
    trunk: str
    calls: int
    answered: int
    total_duration: str
    total_seconds: int
    revenue: str
    buy_cost: str
    margin: str = Field(description="Revenue less buy cost, of the calls whose buy cost is known.")


class StatsRowOut(BaseModel):
    date: str
    extension: str = Field(description='"All" when the row totals every chosen extension.')
    calls: int
    answered: int
    total_duration: str
    total_seconds: int
    average_duration: str
    average_seconds: int
    total_cost: str
    refused: int = Field(0, description="Calls the gate refused (not among `calls`).")


class RecordPage(BaseModel, Generic[Row]):
    total: int
    items: list[Row]


class SettingsOut(BaseModel):
    billing: Literal["on", "off"]
    currency: str
    currency_symbol: str
    timezone: str
    # The account controls' defaults ("": none): docs/controls.md.
    cap_daily: str = ""
    cap_monthly: str = ""
    max_call_cost: str = ""
    max_price_minute: str = ""
    low_balance: str = ""
    # The gate's minimum margin ("": none set here, billing.min_margin of the configuration).
    min_margin: str = ""


class SettingsIn(Body):
    billing: Literal["on", "off"] | None = None
    currency: str | None = Field(None, description="USD, CNY, EUR, GBP, VND or OTHER.")
    symbol: str | None = Field(None, description="Required with OTHER.")
    timezone: str | None = None
    cap_daily: Amount | None = Field(None, description='An amount; "" for no default.')
    cap_monthly: Amount | None = Field(None, description='An amount; "" for no default.')
    max_call_cost: Amount | None = Field(None, description='An amount; "" for no default.')
    max_price_minute: Amount | None = Field(None, description='An amount; "" for no default.')
    low_balance: Amount | None = Field(None, description='An amount; "" for no default.')
    min_margin: Amount | None = Field(
        None, description="Least a call's first minute must sell above its trunk's buy price "
                          '(DENY no_margin); "": the configuration\'s billing.min_margin.')


class HeldOut(BaseModel):
    uniqueid: str
    extension: str
    number: str
    channel: str
    held: str
    limit_seconds: int | None
    rate: str
    state: Literal["held", "flagged"]
    note: str
    since: str


class ChargeIn(Body):
    seconds: Annotated[int, Strict()] = Field(ge=0, le=86_400)


class ChargeOut(BaseModel):
    uniqueid: str
    cost: str
