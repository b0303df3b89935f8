"""Money: Decimal with exactly four places, never float.

Amounts are stored as integer ten-thousandths (`to_units` / `from_units`), so SQLite and
PostgreSQL hold them exactly and `balance = balance - :x` is exact arithmetic in both.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal

from coobill.errors import BadRequest
from coobill.text_memo import parsed_once

PLACES = Decimal("0.0001")
ZERO = Decimal("0.0000")
UNITS = 10_000
# Larger than any sane balance; keeps integer units inside a signed 64-bit column.
MAX_AMOUNT = Decimal("100000000000")
# ASCII decimal text, optionally in scientific notation; Decimal() alone would also take
# "1_000", non-ASCII digits, "NaN" and "Infinity".
DECIMAL_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def parse_amount(
    text: str | int | Decimal,
    *,
    field: str = "amount",
    allow_zero: bool = True,
    allow_negative: bool = False,
) -> Decimal:
    """Parse a user's amount: at most 4 decimals, finite, within range; else BadRequest."""
    if isinstance(text, bool | float):
        raise BadRequest(f"{field}: amounts must be given as decimal text, not float", field=field)
    if isinstance(text, str):
        return _amount_of_text(text, field, allow_zero, allow_negative)
    if isinstance(text, Decimal):
        value = text
    elif isinstance(text, int):
        value = Decimal(text)
    else:
        value = _decimal_of(text, field)
    return _checked_amount(value, text, field, allow_zero, allow_negative)


# A deck repeats a few hundred prices over 100,000 rows: each distinct text is parsed once
# (a refused one is not kept: its error is raised again, each time).
@parsed_once(8192)
def _amount_of_text(text: str, field: str, allow_zero: bool, allow_negative: bool) -> Decimal:
    return _checked_amount(_decimal_of(text, field), text, field, allow_zero, allow_negative)


def _decimal_of(text: object, field: str) -> Decimal:
    if not DECIMAL_TEXT.fullmatch(str(text).strip()):
        if str(text).strip().lower().lstrip("+-") in ("nan", "snan", "inf", "infinity"):
            raise BadRequest(f"{field}: {text!r} is not a finite number", field=field)
        raise BadRequest(f"{field}: {text!r} is not a number", field=field)
    return Decimal(str(text).strip())


def _checked_amount(value: Decimal, text: str | int | Decimal, field: str, allow_zero: bool,
                    allow_negative: bool) -> Decimal:
    if not value.is_finite():
        raise BadRequest(f"{field}: {text!r} is not a finite number", field=field)
    # The range first, without the context (abs() overflows on 1e999999999): quantizing a
    # value of more than 28 digits raises InvalidOperation.
    if value.copy_abs() >= MAX_AMOUNT:
        raise BadRequest(f"{field}: {text!r} is too large", field=field)
    if value.as_tuple().exponent < -4 and value != value.quantize(PLACES):  # type: ignore[operator]
        raise BadRequest(f"{field}: {text!r} has more than 4 decimal places", field=field)
    if value < 0 and not allow_negative:
        raise BadRequest(f"{field}: {text!r} must not be negative", field=field)
    if value == 0 and not allow_zero:
        raise BadRequest(f"{field}: must be more than zero", field=field)
    return value.quantize(PLACES)


def quantize(value: Decimal) -> Decimal:
    """Round a computed amount to 4 places (banker's rounding; rating itself never rounds)."""
    return value.quantize(PLACES, rounding=ROUND_HALF_EVEN)


def to_units(value: Decimal) -> int:
    """Decimal -> integer ten-thousandths, refusing anything that is not exact."""
    scaled = value * UNITS
    if scaled != scaled.to_integral_value():
        raise BadRequest(f"{value} has more than 4 decimal places")
    return int(scaled)


def from_units(units: int) -> Decimal:
    """Integer ten-thousandths -> Decimal with 4 places."""
    return (Decimal(units) / UNITS).quantize(PLACES)


def fmt(value: Decimal) -> str:
    """The canonical text of an amount: 4 places, no exponent."""
    return f"{value.quantize(PLACES):f}"
