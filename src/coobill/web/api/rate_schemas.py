"""The JSON API's bodies of rates, rate decks, the holiday calendar and the quote (the shared
readers of amounts and counts: web/api/schemas.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from coobill.web.api.schemas import Amount, Body, Whole


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
