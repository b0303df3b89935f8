"""The JSON API's bodies, as its OpenAPI schema documents them. Amounts are decimal strings
with at most 4 places ("12.5", "0.0100"): never JSON floats.

Here: how amounts and counts are read (`Amount`, `Whole`, `Body`) and the bodies of the
session, users, extensions and billing; rates, decks, holidays and the quote in
web/api/rate_schemas.py; the records' rows in web/api/record_schemas.py."""

from __future__ import annotations

from typing import Annotated, Any, Literal

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
