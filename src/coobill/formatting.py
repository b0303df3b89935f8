"""How amounts, durations and callers read, the same in the CLI, the portal and their CSVs.

Neutral ground for the adapters: the CLI (cli/output.py) and the portal (web/formatting.py)
both import it, and neither imports the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from coobill.money import fmt

# What a spreadsheet runs as a formula when a cell starts with it (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def plain(value: Any) -> Any:
    """A value as JSON would carry it: amounts as decimal strings, times as ISO text."""
    if isinstance(value, Decimal):
        return fmt(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, (date, time)):
        return value.isoformat(timespec="minutes") if isinstance(value, time) else value.isoformat()
    if isinstance(value, (list, tuple, frozenset, set)):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    return value


def csv_cell(value: Any) -> str:
    """A CSV cell; text that a spreadsheet would run as a formula gets a leading quote."""
    text = "" if value is None else str(plain(value))
    if text.startswith(FORMULA_START) and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True


def duration(seconds: int | None) -> str:
    """mm:ss, or h:mm:ss from an hour on."""
    hours, rest = divmod(max(int(seconds or 0), 0), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def money(value: Decimal | None, symbol: str) -> str:
    """US$1.2000, -¥3.5000: four places, as the appliance's dialogs show amounts."""
    if value is None:
        return ""
    text = fmt(value)
    return f"-{symbol}{text[1:]}" if text.startswith("-") else f"{symbol}{text}"


def caller(name: str, extension: str) -> str:
    """name[ext], as the appliance's records show a caller."""
    return f"{name or extension}[{extension}]"


__all__ = ["FORMULA_START", "caller", "csv_cell", "duration", "money", "plain"]
