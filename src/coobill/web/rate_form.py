"""A rate as the portal's form and API carry it, to and from the service's RateFields."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from coobill.money import fmt
from coobill.services.rate_fields import RateFields, check_rate_fields
from coobill.services.rates import Quote, RateView

# The form's field names are the names the service's errors carry.
FORM_FIELDS = (
    "remark",
    "prefix",
    "length",
    "initial_cost",
    "initial_time",
    "rate",
    "period",
    "start",
    "end",
)


def fields_from_form(values: Mapping[str, str], extensions: Sequence[str]) -> RateFields:
    return check_rate_fields(
        prefix=values.get("prefix", ""),
        number_length=values.get("length", ""),
        initial_cost=values.get("initial_cost", ""),
        initial_seconds=values.get("initial_time", ""),
        rate=values.get("rate", ""),
        period_seconds=values.get("period", ""),
        start=values.get("start", ""),
        end=values.get("end", ""),
        extensions=list(extensions),
        remark=values.get("remark", ""),
        enabled=values.get("enabled") == "on",
    )


def rate_changes(fields: RateFields) -> dict[str, Any]:
    """All of a rate's fields as edit_rate's keyword arguments."""
    return {
        "prefix": fields.prefix,
        "number_length": fields.number_length,
        "initial_cost": fields.initial_cost,
        "initial_seconds": fields.initial_seconds,
        "rate": fields.rate,
        "period_seconds": fields.period_seconds,
        "start": fields.start,
        "end": fields.end,
        "extensions": fields.extensions,
        "remark": fields.remark,
        "enabled": fields.enabled,
    }


def form_values(fields: RateFields) -> dict[str, Any]:
    return {
        "remark": fields.remark,
        "prefix": fields.prefix,
        "length": str(fields.number_length),
        "initial_cost": fmt(fields.initial_cost),
        "initial_time": str(fields.initial_seconds),
        "rate": fmt(fields.rate),
        "period": str(fields.period_seconds),
        "start": fields.start,
        "end": fields.end,
        "enabled": "on" if fields.enabled else "",
    }


def rate_json(view: RateView) -> dict[str, Any]:
    f = view.fields
    return {
        "id": view.id,
        "enabled": f.enabled,
        "remark": f.remark,
        "prefix": f.prefix,
        "length": f.number_length,
        "initial_cost": fmt(f.initial_cost),
        "initial_time": f.initial_seconds,
        "rate": fmt(f.rate),
        "period": f.period_seconds,
        "start": f.start,
        "end": f.end,
        "extensions": list(f.extensions),
    }


def quote_json(q: Quote) -> dict[str, Any]:
    return {
        "extension": q.extension,
        "number": q.number,
        "at": q.at.strftime("%H:%M"),
        "rate_id": q.rate.id if q.rate else None,
        "remark": q.rate.remark if q.rate else None,
        "prefix": q.rate.prefix if q.rate else None,
        "seconds": q.seconds,
        "cost": None if q.cost is None else fmt(q.cost),
        "funds": fmt(q.funds),
        "limit_seconds": q.limit_seconds,
    }
