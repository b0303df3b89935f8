"""A rate as the portal's form and API carry it, to and from the service's RateFields (the
field names: services/rate_fields.py RATE_FIELD_NAMES)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from coobill.money import fmt
from coobill.services.rate_fields import (
    DAY_NAMES,
    RATE_FIELD_NAMES,
    RateFields,
    check_rate_fields,
    moment_text,
    public_values,
    service_arguments,
)
from coobill.services.rates import Quote, RateView

# The form's fields but the enabled check box and the extensions' list: text boxes, the days'
# check boxes (sent joined by commas), the holidays' choice, the split check box.
FORM_FIELDS = tuple(name for name in RATE_FIELD_NAMES if name not in ("enabled", "extensions"))
DAYS = DAY_NAMES


def fields_from_form(values: Mapping[str, str], extensions: Sequence[str]) -> RateFields:
    given = {name: values.get(name, "") for name in FORM_FIELDS}
    return check_rate_fields(**service_arguments(given), extensions=list(extensions),
                             enabled=values.get("enabled") == "on")


def _form_moment(fields: RateFields, name: str) -> str:
    """A moment as the datetime-local box shows it."""
    return moment_text(getattr(fields, name)).replace(" ", "T")


def rate_changes(fields: RateFields) -> dict[str, Any]:
    """All of a rate's fields as edit_rate's keyword arguments."""
    return service_arguments(public_values(fields))


def form_values(fields: RateFields) -> dict[str, Any]:
    shown = {k: str(v) for k, v in public_values(fields).items() if k in FORM_FIELDS}
    return shown | {"initial_cost": fmt(fields.initial_cost), "rate": fmt(fields.rate),
                    "enabled": "on" if fields.enabled else "",
                    "valid_from": _form_moment(fields, "valid_from"),
                    "valid_until": _form_moment(fields, "valid_until"),
                    "split": "on" if fields.split else ""}


def rate_json(view: RateView) -> dict[str, Any]:
    row = public_values(view.fields)
    return {"id": view.id, **row, "initial_cost": fmt(row["initial_cost"]),
            "rate": fmt(row["rate"]), "extensions": list(row["extensions"]),
            "valid_from": moment_text(row["valid_from"]) or None,
            "valid_until": moment_text(row["valid_until"]) or None}


def quote_json(q: Quote) -> dict[str, Any]:
    return {
        "extension": q.extension,
        "number": q.number,
        "at": q.at.strftime("%H:%M"),
        "date": q.at.date().isoformat(),
        "rate_id": q.rate.id if q.rate else None,
        "remark": q.rate.remark if q.rate else None,
        "prefix": q.rate.prefix if q.rate else None,
        "seconds": q.seconds,
        "cost": None if q.cost is None else fmt(q.cost),
        "funds": fmt(q.funds),
        "limit_seconds": q.limit_seconds,
    }
