"""How a hold keeps the rate it was allowed at: its tariff as text and the rate's label.

A hold is settled at the tariff of its authorization, whatever the rate became since (a
billing user edits it, a deck replaces it), so the gate writes both on the hold's row and
settlement reads them back. One home for both spellings: the gate and settlement import it.
"""

from __future__ import annotations

from decimal import Decimal

from coobill.money import ZERO
from coobill.rating import Schedule, Tariff, cost, schedule_cost


def tariff_text(tariff: Tariff) -> str:
    """"initial_cost/initial_seconds/rate/period", as a hold's `tariff` column keeps it."""
    return f"{tariff.initial_cost}/{tariff.initial_seconds}/{tariff.rate}/{tariff.period_seconds}"


def tariff_from_text(text: str) -> Tariff | None:
    """The tariff a hold was allowed at; None for an unbilled authorization (no tariff)."""
    if not text:
        return None
    initial_cost, initial_seconds, rate, period = text.split("/")
    return Tariff(Decimal(initial_cost), int(initial_seconds), Decimal(rate), int(period))


def schedule_text(schedule: Schedule) -> str:
    """A split rate's schedule as a hold's `tariff_schedule` keeps it: "offset=tariff;...",
    every change after the first (which is the hold's `tariff`); "" when it has none."""
    return ";".join(f"{offset}={tariff_text(tariff)}" for offset, tariff in schedule[1:])


def schedule_of(tariff: Tariff, text: str) -> Schedule:
    """The schedule a hold was allowed at, from its tariff and its `tariff_schedule`."""
    changes = [(0, tariff)]
    for part in filter(None, text.split(";")):
        offset, spelled = part.split("=", 1)
        found = tariff_from_text(spelled)
        assert found is not None
        changes.append((int(offset), found))
    return tuple(changes)


def hold_cost(tariff: Tariff | None, schedule: str, billable_seconds: int) -> Decimal:
    """What a call allowed at this tariff (and, split, this schedule) costs: what the gate
    held for and settlement charges."""
    if tariff is None:
        return ZERO
    if not schedule:
        return cost(tariff, billable_seconds)
    return schedule_cost(schedule_of(tariff, schedule), billable_seconds)


def rate_label(rate_id: int, prefix: str, remark: str) -> str:
    """How a call record and a hold name their rate: "#7 0086 China mobile", "#2 (any)"."""
    return f"#{rate_id} {prefix or '(any)'}{' ' + remark if remark else ''}"[:255]


__all__ = ["hold_cost", "rate_label", "schedule_of", "schedule_text", "tariff_from_text",
           "tariff_text"]
