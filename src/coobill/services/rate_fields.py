"""Checking a rate as a billing user enters it: every mistake is refused here, with its field,
never discovered at call time."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal
from typing import Any

from coobill.errors import BadRequest
from coobill.money import parse_amount
from coobill.rating.calendar import DAY_NAMES, HOLIDAY_RULES, days_text, parse_days
from coobill.rating.rates import EVERY_EXTENSION
from coobill.services.bounds import digits, whole_number
from coobill.text_memo import parsed_once

__all__ = ["ALL_EXTENSIONS", "DAY_NAMES", "RATE_FIELD_NAMES", "RateFields", "check_rate_fields",
           "check_trunk", "moment_text", "parse_hhmm", "parse_moment", "parse_yes_no",
           "public_values", "service_arguments", "split_extensions"]

TRUNK = re.compile(r"[A-Za-z0-9_.@*-]{1,64}")
HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
# A rate's "*" for every extension: the rating core's rule, under the name callers use here.
ALL_EXTENSIONS = EVERY_EXTENSION

# The one mapping of a rate's field names: what the CLI's options, the portal's form and API,
# a CSV deck's columns and the errors' `field` call each field (the public names, in a deck's
# column order), to the name RateFields, check_rate_fields and edit_rate use.
RATE_FIELD_NAMES: dict[str, str] = {
    "enabled": "enabled",
    "remark": "remark",
    "prefix": "prefix",
    "length": "number_length",
    "initial_cost": "initial_cost",
    "initial_time": "initial_seconds",
    "rate": "rate",
    "period": "period_seconds",
    "start": "start",
    "end": "end",
    "extensions": "extensions",
    "days": "days",
    "holidays": "holidays",
    "valid_from": "valid_from",
    "valid_until": "valid_until",
    "split": "split",
    "trunk": "trunk",
}

# How a moment of a dated deck is written (PBX local time, to the minute); the portal's
# datetime-local box sends the ISO form with a "T", a bare date means its midnight.
MOMENT = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[ T]([0-9]{2}):([0-9]{2}))?$")
MOMENT_TEXT = "%Y-%m-%d %H:%M"
_YES = ("1", "true", "yes", "on")
_NO = ("0", "false", "no", "off", "")


@dataclass(frozen=True, slots=True)
class RateFields:
    """A rate's fields, validated. Money as Decimal, times as HH:MM text."""

    prefix: str
    number_length: int
    initial_cost: Decimal
    initial_seconds: int
    rate: Decimal
    period_seconds: int
    start: str
    end: str
    extensions: tuple[str, ...]
    remark: str = ""
    enabled: bool = True
    days: str = ""  # "" every day, else "mon,sat,..." (rating/calendar.py days_text)
    holidays: str = "any"  # any | only | except
    valid_from: datetime | None = None  # PBX local time, included
    valid_until: datetime | None = None  # excluded
    split: bool = False
    trunk: str = ""  # "": a sell rate; a trunk's endpoint name (or "*"): a buy rate for it

    def with_changes(self, **changes: Any) -> RateFields:
        return check_rate_fields(**{**_as_kwargs(self), **changes})


def service_arguments(given: Mapping[str, Any]) -> dict[str, Any]:
    """A rate's fields under their public names as check_rate_fields' and edit_rate's keyword
    arguments; a field given as None (left out) is left out."""
    return {RATE_FIELD_NAMES[name]: value for name, value in given.items() if value is not None}


def public_values(fields: RateFields) -> dict[str, Any]:
    """A rate's fields under their public names, in a deck's column order."""
    return {public: getattr(fields, name) for public, name in RATE_FIELD_NAMES.items()}


def _as_kwargs(fields: RateFields) -> dict[str, Any]:
    return {name: getattr(fields, name) for name in RateFields.__slots__}


def parse_hhmm(text: str, field: str) -> time:
    match = HHMM.match((text or "").strip())
    if not match:
        raise BadRequest(f"{field}: {text!r} is not a time of day HH:MM (00:00-23:59)", field=field)
    return time(int(match.group(1)), int(match.group(2)))


@parsed_once(1024)
def _time_text(text: str, field: str) -> str:
    """A time of day's canonical text, "HH:MM" (parsed once per distinct text)."""
    return parse_hhmm(text, field).strftime("%H:%M")


def check_trunk(value: Any) -> str:
    """A buy rate's trunk: the endpoint name calls leave on ("*" for every trunk)."""
    trunk = str(value or "").strip()
    if trunk and not TRUNK.fullmatch(trunk):
        raise BadRequest(f"trunk: {trunk[:80]!r} is not a trunk's endpoint name", field="trunk")
    return trunk


def parse_moment(value: Any, field: str) -> datetime | None:
    """A dated deck's moment, "YYYY-MM-DD HH:MM" (PBX local time); empty: none."""
    if value is None or isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        if not text:
            return None
        moment = _moment_of_text(text, field)
    if moment is not None and (moment.second or moment.microsecond or moment.tzinfo):
        raise BadRequest(f"{field}: a moment is a local time to the minute", field=field)
    return moment


# Parsed once per distinct text, as the other columns a deck repeats over 100,000 rows (a
# refused text is not kept: its error is raised each time).
@parsed_once(1024)
def _moment_of_text(text: str, field: str) -> datetime:
    match = MOMENT.match(text)
    try:
        if match is None:
            raise ValueError
        # naive on purpose: the PBX's local time, as the CDRs and the rate book have it
        year, month, day, hour, minute = (int(part or 0) for part in match.groups())
        return datetime(year, month, day, hour, minute)  # noqa: DTZ001
    except ValueError:
        raise BadRequest(f"{field}: {text!r} is not a moment YYYY-MM-DD HH:MM",
                         field=field) from None


def moment_text(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime(MOMENT_TEXT)


def parse_yes_no(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value if value is not None else "").strip().lower()
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise BadRequest(f"{field}: {value!r} is not a yes/no value", field=field)


def _days(value: Any) -> str:
    return _days_of_text(str(value or ""))


@parsed_once(256)
def _days_of_text(text: str) -> str:
    try:
        return days_text(parse_days(text))
    except ValueError:
        raise BadRequest(f"days: {text!r} is not a list of days (mon,tue,wed,thu,fri,sat,sun)",
                         field="days") from None


def _holiday_rule(value: Any) -> str:
    rule = str(value or "any").strip().lower() or "any"
    if rule not in HOLIDAY_RULES:
        raise BadRequest(f"holidays: {value!r} must be any, only or except", field="holidays")
    return rule


def _whole(value: Any, field: str, *, minimum: int, maximum: int) -> int:
    return whole_number(value, field, minimum=minimum, maximum=maximum)


def split_extensions(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return _extensions_of_text(value)
    return _extension_tuple(str(v).strip() for v in value)


# A deck names the same few lists ("*" most of all) over and over: each parsed once.
@parsed_once(4096, longest=256)
def _extensions_of_text(text: str) -> tuple[str, ...]:
    return _extension_tuple(re.split(r"[,;\s]+", text.strip()))


def _extension_tuple(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({i for i in items if i}, key=lambda n: (len(n), n)))


def _number_length(value: Any, prefix: str) -> int:
    """A rate's number length: whole digits including the prefix, 0 for any length."""
    length = _whole(value, "length", minimum=0, maximum=64)
    if length and length < len(prefix):
        raise BadRequest(
            f"length: {length} is shorter than the prefix; it counts the prefix (0 = any)",
            field="length",
        )
    return length


def check_rate_fields(
    *,
    prefix: Any,
    number_length: Any,
    initial_cost: Any,
    initial_seconds: Any,
    rate: Any,
    period_seconds: Any,
    start: Any = "00:00",
    end: Any = "23:59",
    extensions: Any,
    remark: Any = "",
    enabled: Any = True,
    days: Any = "",
    holidays: Any = "any",
    valid_from: Any = None,
    valid_until: Any = None,
    split: Any = False,
    trunk: Any = "",
) -> RateFields:
    """Validate a rate's fields; BadRequest names the first bad one. A buy rate (`trunk`)
    is for every extension: what the carrier charges does not depend on who calls."""
    trunk = check_trunk(trunk)
    if trunk:
        extensions = ALL_EXTENSIONS
    prefix = digits(None if prefix is None else str(prefix), "prefix", empty=True)
    fields = RateFields(
        prefix=prefix,
        number_length=_number_length(number_length, prefix),
        initial_cost=parse_amount(initial_cost, field="initial_cost"),
        initial_seconds=_whole(initial_seconds, "initial_time", minimum=0, maximum=86400),
        rate=parse_amount(rate, field="rate"),
        period_seconds=_whole(period_seconds, "period", minimum=1, maximum=86400),
        start=_time_text(str(start), "start"),
        end=_time_text(str(end), "end"),
        extensions=split_extensions(extensions),
        remark=str(remark or "").strip()[:255],
        enabled=bool(enabled),
        days=_days(days),
        holidays=_holiday_rule(holidays),
        valid_from=parse_moment(valid_from, "valid_from"),
        valid_until=parse_moment(valid_until, "valid_until"),
        split=parse_yes_no(split, "split"),
        trunk=trunk,
    )
    if fields.valid_from and fields.valid_until and fields.valid_until <= fields.valid_from:
        raise BadRequest("valid_until: must be after valid_from", field="valid_until")
    if not fields.extensions:
        raise BadRequest("extensions: choose at least one extension (or * for all)",
                         field="extensions")
    return fields
