"""Adversarial review of the statements (issue 18): the last month a date can name, through
the command line - one line on stderr, never a traceback (the portal's 400:
tests/web/test_account_pages.py)."""

from __future__ import annotations

import pytest

from coobill.errors import BadRequest
from coobill.services import statements
from tests.cli.conftest import Coobill, ok


def test_the_month_after_the_last_a_date_can_hold_is_refused() -> None:
    with pytest.raises(BadRequest) as refused:
        statements.check_month("9999-12")
    assert refused.value.field == "month"
    assert statements.check_month("9999-11")[1].isoformat() == "9999-12-01"


def test_the_command_line_says_so_in_one_line(ledger: str, coobill: Coobill) -> None:
    ok(coobill("extension", "set", "100", "--billing"))
    for args in (("statement", "100", "--month", "9999-12"),
                 ("statements", "--month", "9999-12", "--out", ".")):
        result = coobill(*args)
        assert result.code != 0
        assert len(result.err.splitlines()) == 1, result.err
        assert "month" in result.err

