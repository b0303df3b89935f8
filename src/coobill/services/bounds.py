"""What a number typed by a person may be: ASCII digits, inside the ledger's ranges.

`str.isdigit()` and `int()` take any Unicode digit ('８８', '²', '१२'), underscores ('1_0')
and surrounding blanks; a prefix of full-width digits is then stored and never matches a
dialled number, and '²' passes isdigit() only for int() to raise. Every adapter (portal, JSON
API, CLI) and every service checks numbers here, so each bound has one home.
"""

from __future__ import annotations

import re

from coobill.errors import BadRequest
from coobill.text_memo import parsed_once

_DIGITS = re.compile(r"[0-9]+")
# Ids are INTEGER columns: 32-bit on PostgreSQL (64-bit on SQLite), so the smaller range is
# the one both ledgers can look up without an overflow error.
MAX_ID = 2**31 - 1
# A row offset or a page beyond this is a typing error (or a probe), not a page of records.
MAX_OFFSET = 2**31 - 1
MAX_PAGE = 1_000_000


def is_digits(text: str) -> bool:
    """Only ASCII 0-9, at least one."""
    return _DIGITS.fullmatch(text) is not None


def digits(text: str | None, field: str, *, max_length: int = 32, empty: bool = False) -> str:
    """`text` stripped, checked to be ASCII digits only (or empty when `empty`)."""
    value = (text or "").strip()
    if not value and empty:
        return ""
    if not is_digits(value) and empty:
        raise BadRequest(f"{field}: {value!r} must be digits only (or empty)", field=field)
    if not is_digits(value):
        raise BadRequest(f"{field}: {value!r} must be digits only", field=field)
    if len(value) > max_length:
        raise BadRequest(f"{field}: at most {max_length} digits", field=field)
    return value


def whole_number(value: object, field: str, *, minimum: int, maximum: int) -> int:
    """A whole number given as int or ASCII text, within [minimum, maximum]."""
    if isinstance(value, bool | float):
        raise BadRequest(f"{field}: must be a whole number", field=field)
    if isinstance(value, int):
        return _within(value, field, minimum, maximum)
    if isinstance(value, str):
        return _whole_text(value, field, minimum, maximum)
    return _within(_whole_of(value, field, minimum, maximum), field, minimum, maximum)


# A deck's columns of seconds and lengths repeat a few values over 100,000 rows: each
# distinct text is parsed once (a refused one is not kept: its error is raised each time).
@parsed_once(4096)
def _whole_text(text: str, field: str, minimum: int, maximum: int) -> int:
    return _within(_whole_of(text, field, minimum, maximum), field, minimum, maximum)


def _whole_of(value: object, field: str, minimum: int, maximum: int) -> int:
    text = str(value).strip()
    sign = -1 if text.startswith("-") else 1
    magnitude = text.removeprefix("-").removeprefix("+") if text[:1] in "+-" else text
    # A thousand digits are refused before int() parses them (and spends the time).
    if not is_digits(magnitude) or len(magnitude) > 20:
        if is_digits(magnitude):
            raise BadRequest(f"{field}: must be between {minimum} and {maximum}", field=field)
        raise BadRequest(f"{field}: {value!r} is not a whole number", field=field)
    return sign * int(magnitude)


def _within(number: int, field: str, minimum: int, maximum: int) -> int:
    if not minimum <= number <= maximum:
        raise BadRequest(f"{field}: must be between {minimum} and {maximum}", field=field)
    return number


def record_id(value: object, field: str = "id") -> int:
    """A row id (a rate, a hold): 1 to MAX_ID."""
    return whole_number(value, field, minimum=1, maximum=MAX_ID)


def page_number(text: str | None, field: str = "page") -> int:
    """A pager's page: empty is the first; else 1 to MAX_PAGE."""
    if text is None or not text.strip():
        return 1
    return whole_number(text, field, minimum=1, maximum=MAX_PAGE)
