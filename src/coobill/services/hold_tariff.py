"""How a hold keeps the rate it was allowed at: its tariff as text and the rate's label.

A hold is settled at the tariff of its authorization, whatever the rate became since (a
billing user edits it, a deck replaces it), so the gate writes both on the hold's row and
settlement reads them back. One home for both spellings: the gate and settlement import it.
"""

from __future__ import annotations

from decimal import Decimal

from coobill.rating import Tariff


def tariff_text(tariff: Tariff) -> str:
    """"initial_cost/initial_seconds/rate/period", as a hold's `tariff` column keeps it."""
    return f"{tariff.initial_cost}/{tariff.initial_seconds}/{tariff.rate}/{tariff.period_seconds}"


def tariff_from_text(text: str) -> Tariff | None:
    """The tariff a hold was allowed at; None for an unbilled authorization (no tariff)."""
    if not text:
        return None
    initial_cost, initial_seconds, rate, period = text.split("/")
    return Tariff(Decimal(initial_cost), int(initial_seconds), Decimal(rate), int(period))


def rate_label(rate_id: int, prefix: str, remark: str) -> str:
    """How a call record and a hold name their rate: "#7 0086 China mobile", "#2 (any)"."""
    return f"#{rate_id} {prefix or '(any)'}{' ' + remark if remark else ''}"[:255]


__all__ = ["rate_label", "tariff_from_text", "tariff_text"]
