"""Checking a rate as a billing user enters it: every mistake is refused here, with its field,
never discovered at call time."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from decimal import Decimal
from typing import Any

from coobill.errors import BadRequest
from coobill.money import parse_amount
from coobill.services.bounds import digits, whole_number

HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
ALL_EXTENSIONS = "*"

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
}


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


def _whole(value: Any, field: str, *, minimum: int, maximum: int) -> int:
    return whole_number(value, field, minimum=minimum, maximum=maximum)


def split_extensions(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        items = re.split(r"[,;\s]+", value.strip())
    else:
        items = [str(v).strip() for v in value]
    return tuple(sorted({i for i in items if i}, key=lambda n: (len(n), n)))


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
) -> RateFields:
    """Validate a rate's fields; BadRequest names the first bad one."""
    prefix = digits(None if prefix is None else str(prefix), "prefix", empty=True)
    length = _whole(number_length, "length", minimum=0, maximum=64)
    if length and length < len(prefix):
        raise BadRequest(
            f"length: {length} is shorter than the prefix; it counts the prefix (0 = any)",
            field="length",
        )
    fields = RateFields(
        prefix=prefix,
        number_length=length,
        initial_cost=parse_amount(initial_cost, field="initial_cost"),
        initial_seconds=_whole(initial_seconds, "initial_time", minimum=0, maximum=86400),
        rate=parse_amount(rate, field="rate"),
        period_seconds=_whole(period_seconds, "period", minimum=1, maximum=86400),
        start=parse_hhmm(str(start), "start").strftime("%H:%M"),
        end=parse_hhmm(str(end), "end").strftime("%H:%M"),
        extensions=split_extensions(extensions),
        remark=str(remark or "").strip()[:255],
        enabled=bool(enabled),
    )
    if not fields.extensions:
        raise BadRequest("extensions: choose at least one extension (or * for all)",
                         field="extensions")
    return fields
