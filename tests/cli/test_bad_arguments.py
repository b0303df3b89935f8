"""A bad argument: one line on stderr, a non-zero exit, and the ledger exactly as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import RATE, Coobill, Result, authorized, ok, snapshot

GOOD_RATE = dict(zip(RATE[::2], RATE[1::2], strict=True))


def rate_add(**changes: str) -> list[str]:
    options = {**GOOD_RATE, **changes}
    return ["rate", "add", *[part for item in options.items() for part in item]]


BAD_INPUT = 2
UNKNOWN = 3

BAD_COMMANDS: list[tuple[list[str], int, str]] = [
    # (arguments, exit code, a word the error line must hold)
    (["extension", "set", "100", "--credit", "abc"], BAD_INPUT, "credit"),
    (["extension", "set", "100", "--credit", "-5"], BAD_INPUT, "credit"),
    (["extension", "set", "102", "--credit", "0.00001"], BAD_INPUT, "credit"),
    (["extension", "set", "10 2", "--billing"], BAD_INPUT, "extension"),
    (["extension", "set", "100", "--payment", "cash"], BAD_INPUT, "payment"),
    (["extension", "recharge", "100", "999", "--amount", "5"], UNKNOWN, "999"),
    (["extension", "recharge", "100", "--amount", "-5"], BAD_INPUT, "negative"),
    (["extension", "recharge", "100", "--amount", "0"], BAD_INPUT, "zero"),
    (["extension", "recharge", "100", "--amount", "NaN"], BAD_INPUT, "finite"),
    (["extension", "recharge", "100", "--amount", "Infinity"], BAD_INPUT, "finite"),
    (["extension", "recharge", "100", "--amount", "1.00001"], BAD_INPUT, "4 decimal places"),
    (["extension", "recharge", "100", "--amount", "1e999999"], BAD_INPUT, "too large"),
    (["extension", "recharge", "100"], BAD_INPUT, "--amount"),
    (["extension", "adjust", "999", "--amount", "1"], UNKNOWN, "999"),
    (["extension", "adjust", "100", "--amount", "0"], BAD_INPUT, "zero"),
    (["extension", "show", "999"], UNKNOWN, "999"),
    (["extension", "list", "--json", "--csv"], BAD_INPUT, "--csv"),
    (["extension", "bogus"], BAD_INPUT, "bogus"),
    (rate_add(**{"--prefix": "00a"}), BAD_INPUT, "prefix"),
    (rate_add(**{"--start": "24:00"}), BAD_INPUT, "start"),
    (rate_add(**{"--end": "9:60"}), BAD_INPUT, "end"),
    (rate_add(**{"--start": "08:00", "--end": "noon"}), BAD_INPUT, "end"),
    (rate_add(**{"--period": "0"}), BAD_INPUT, "period"),
    (rate_add(**{"--length": "1"}), BAD_INPUT, "length"),
    (rate_add(**{"--initial-cost": "-1"}), BAD_INPUT, "initial_cost"),
    (rate_add(**{"--rate": "0.00001"}), BAD_INPUT, "rate"),
    (rate_add(**{"--extensions": "100,999"}), BAD_INPUT, "999"),
    (["rate", "add", "--prefix", "00"], BAD_INPUT, "required"),
    (["rate", "edit", "1", "--prefix", "x"], BAD_INPUT, "prefix"),
    (["rate", "edit", "1", "--length", "1", "--prefix", "0086"], BAD_INPUT, "length"),
    (["rate", "edit", "99", "--rate", "1"], UNKNOWN, "99"),
    (["rate", "edit", "abc"], BAD_INPUT, "abc"),
    (["rate", "delete", "99"], UNKNOWN, "99"),
    (["rate", "quote", "999", "0012"], UNKNOWN, "999"),
    (["rate", "quote", "100", "00-12"], BAD_INPUT, "number"),
    (["rate", "quote", "100", "0012", "--at", "25:00"], BAD_INPUT, "at"),
    (rate_add(**{"--days": "mon,funday"}), BAD_INPUT, "days"),
    (rate_add(**{"--holidays": "sometimes"}), BAD_INPUT, "--holidays"),
    (rate_add(**{"--valid-from": "2027-01-01 25:00"}), BAD_INPUT, "valid_from"),
    (rate_add(**{"--valid-from": "2027-01-02", "--valid-until": "2027-01-01"}), BAD_INPUT,
     "valid_until"),
    (["holiday", "add", "2026-02-30"], BAD_INPUT, "day"),
    (["holiday", "add", "2026-12-25", "--name", "x" * 65], BAD_INPUT, "name"),
    (["holiday", "remove", "2026-07-04"], UNKNOWN, "2026-07-04"),
    (["recharges", "list", "--from", "2026-13-01"], BAD_INPUT, "from"),
    (["calls", "list", "--from", "2026-11-02", "--to", "2026-11-01"], BAD_INPUT, "to"),
    (["stats", "--by", "week"], BAD_INPUT, "week"),
    (["settings", "set"], BAD_INPUT, "at least one"),
    (["settings", "set", "--currency", "XX"], BAD_INPUT, "currency"),
    (["settings", "set", "--currency", "JPY"], BAD_INPUT, "symbol"),
    (["settings", "set", "--billing", "off", "--timezone", "Mars/Base"], BAD_INPUT, "timezone"),
    (["user", "add", "bob", "--role", "root", "--password", "long enough"], BAD_INPUT, "role"),
    (["user", "add", "bob smith", "--role", "admin", "--password", "long enough"], BAD_INPUT,
     "name"),
    (["user", "add", "bob", "--role", "admin", "--password", "short"], BAD_INPUT, "password"),
    (["user", "add", "alice", "--role", "billing", "--password", "long enough"], BAD_INPUT,
     "already exists"),
    (["user", "passwd", "nobody", "--password", "long enough"], UNKNOWN, "nobody"),
    (["user", "passwd", "alice", "--password", "short"], BAD_INPUT, "password"),
    (["user", "remove", "nobody"], UNKNOWN, "nobody"),
    (["user", "remove", "alice"], BAD_INPUT, "last admin"),
    (["reservations", "release", "nope"], UNKNOWN, "nope"),
    (["reservations", "charge", "nope", "--seconds", "5"], UNKNOWN, "nope"),
    (["reservations", "charge", "live-1", "--seconds", "-1"], BAD_INPUT, "seconds"),
    (["reservations", "charge", "live-1", "--seconds", "x"], BAD_INPUT, "seconds"),
    # Issue 14: non-ASCII digits and numbers past every range (no traceback, no 500).
    (rate_add(**{"--prefix": "８８"}), BAD_INPUT, "prefix"),
    (rate_add(**{"--period": "６0"}), BAD_INPUT, "period"),
    (rate_add(**{"--length": "99999999999999999999"}), BAD_INPUT, "length"),
    (["rate", "quote", "100", "８８"], BAD_INPUT, "number"),
    (["rate", "quote", "100", "0012", "--seconds", "99999999999999999999"], BAD_INPUT,
     "--seconds"),
    (["rate", "quote", "100", "0012", "--seconds", "²"], BAD_INPUT, "--seconds"),
    (["rate", "edit", "9223372036854775808", "--rate", "1"], BAD_INPUT, "id"),
    (["rate", "delete", "2147483648"], BAD_INPUT, "id"),
    (["rate", "delete", "１"], BAD_INPUT, "id"),
    (["reservations", "charge", "live-1", "--seconds", "99999999999999999999"], BAD_INPUT,
     "--seconds"),
    (["reservations", "release", "live-1", "--hold", "9223372036854775808"], BAD_INPUT, "--hold"),
    (["calls", "list", "--to", "9999-12-31"], BAD_INPUT, "to"),
    (["recharges", "list", "--to", "9999-12-31"], BAD_INPUT, "to"),
    (["recharges", "list", "--from", "２０２６-01-01"], BAD_INPUT, "from"),
    (["stats", "--from", "20260101"], BAD_INPUT, "from"),
    (["extension", "set", "１００"], BAD_INPUT, "extension"),
    (["extension", "recharge", "100", "--amount", "１"], BAD_INPUT, "amount"),
    (["extension", "recharge", "100", "--amount", "1000000"], BAD_INPUT, "max_balance"),
    (["extension", "adjust", "100", "--amount", "99999999999"], BAD_INPUT, "max_balance"),
    (["extension", "set", "100", "--credit", "1000000.0001"], BAD_INPUT, "max_balance"),
    (["user", "add", "bob", "--role", "admin", "--password", "x" * 1025], BAD_INPUT,
     "password"),
]


def assert_one_line_error(result: Result, code: int, word: str, command: list[str]) -> None:
    assert result.code == code, (command, result)
    assert result.out == "", (command, result)
    lines = result.err.splitlines()
    assert len(lines) == 1, (command, result.err)
    assert lines[0].startswith("coobill"), (command, result.err)
    assert word in lines[0], (command, result.err)


@pytest.fixture
def busy_ledger(seeded: str, coobill: Coobill) -> str:
    """The seeded ledger with a portal user and a live call holding funds."""
    ok(coobill("user", "add", "alice", "--role", "admin", "--password", "correct horse"))
    assert authorized("live-1").allowed
    return seeded


class TestBadArguments:
    def test_each_bad_argument_is_one_line_a_non_zero_exit_and_changes_nothing(
        self, busy_ledger: str, coobill: Coobill
    ) -> None:
        before = snapshot(busy_ledger)
        for command, code, word in BAD_COMMANDS:
            assert_one_line_error(coobill(*command), code, word, command)
        assert snapshot(busy_ledger) == before

    def test_a_deck_with_one_bad_line_imports_nothing_and_names_the_line(
        self, busy_ledger: str, coobill: Coobill, tmp_path: Path
    ) -> None:
        deck = tmp_path / "deck.csv"
        deck.write_text(
            "prefix,length,initial_cost,initial_time,rate,period,start,end,extensions\n"
            "0044,0,0.1,60,0.05,60,00:00,23:59,*\n"
            "0033,0,0.1,60,0.05,60,00:00,24:59,*\n"
        )
        before = snapshot(busy_ledger)
        for replace in ([], ["--replace"]):
            command = ["rate", "import", str(deck), *replace]
            assert_one_line_error(coobill(*command), BAD_INPUT, "csv line 3: end", command)
        assert snapshot(busy_ledger) == before

    def test_a_deck_that_cannot_be_read_is_one_line(
        self, busy_ledger: str, coobill: Coobill, tmp_path: Path
    ) -> None:
        (tmp_path / "latin1.csv").write_bytes(b"prefix\n\xff\xfe\n")
        for path in (tmp_path / "missing.csv", tmp_path / "latin1.csv", tmp_path):
            command = ["rate", "import", str(path)]
            assert_one_line_error(coobill(*command), BAD_INPUT, "file", command)
