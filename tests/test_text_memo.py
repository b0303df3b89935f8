"""The deck parsers' memo (coobill/text_memo.py): a short text is parsed once, a long one
each time and never kept, a refused one raised each time."""

from __future__ import annotations

import pytest

from coobill.errors import BadRequest
from coobill.money import parse_amount
from coobill.text_memo import LONGEST_KEPT, parsed_once


def counting_parser() -> tuple[list[str], object]:
    seen: list[str] = []

    @parsed_once(16)
    def parse(text: str, field: str) -> int:
        seen.append(text)
        if not text.strip().isdigit():
            raise BadRequest(f"{field}: {text!r} is not a number", field=field)
        return int(text)

    return seen, parse


def test_a_short_text_is_parsed_once() -> None:
    seen, parse = counting_parser()
    assert [parse("42", "n") for _ in range(3)] == [42, 42, 42]  # type: ignore[operator]
    assert seen == ["42"]


def test_a_long_text_is_parsed_each_time_and_not_kept() -> None:
    seen, parse = counting_parser()
    long = " " * LONGEST_KEPT + "7"
    assert [parse(long, "n") for _ in range(2)] == [7, 7]  # type: ignore[operator]
    assert seen == [long, long]


def test_a_refused_text_is_refused_each_time() -> None:
    seen, parse = counting_parser()
    for _ in range(2):
        with pytest.raises(BadRequest, match="is not a number"):
            parse("x", "n")  # type: ignore[operator]
    assert seen == ["x", "x"]


def test_an_amount_padded_past_the_longest_kept_is_still_an_amount() -> None:
    assert str(parse_amount("0" * 10_000 + "1.5")) == "1.5000"
    assert str(parse_amount("1.5")) == "1.5000"
