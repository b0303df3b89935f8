"""The one table of errors: every CoobillError states what the portal and the CLI make of it."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import coobill
from coobill import errors
from coobill.cli.main import exit_code_for
from coobill.errors import CoobillError, HoldNotSettled, TooManyAttempts


def _every_coobill_error() -> list[type[CoobillError]]:
    """Every subclass, after importing every module of coobill (so none hides elsewhere)."""
    for module in pkgutil.walk_packages(coobill.__path__, "coobill."):
        if ".migrations." not in module.name:
            importlib.import_module(module.name)
    found, todo = [], [CoobillError]
    while todo:
        kind = todo.pop()
        found.append(kind)
        todo.extend(kind.__subclasses__())
    return found


EVERY_ERROR = _every_coobill_error()


@pytest.mark.parametrize("error", EVERY_ERROR, ids=lambda e: e.__name__)
def test_every_error_lives_in_errors_py_and_states_its_own_mapping(
    error: type[CoobillError],
) -> None:
    """Defined in coobill.errors, with its kind, HTTP status and exit code stated on the class
    itself: a new error must say what it is, not inherit a fall-through."""
    assert error.__module__ == "coobill.errors"
    own = vars(error)
    assert {"kind", "http_status", "exit_code"} <= own.keys(), error
    assert 400 <= error.http_status <= 599
    assert 1 <= error.exit_code <= 125
    assert getattr(errors, error.__name__) is error
    assert error.__name__ in errors.__all__


def test_the_tree_in_the_docstring_names_every_error() -> None:
    for error in EVERY_ERROR:
        assert error.__name__ in (errors.__doc__ or ""), error


@pytest.mark.parametrize("error", EVERY_ERROR, ids=lambda e: e.__name__)
def test_the_cli_exits_with_the_errors_code(error: type[CoobillError]) -> None:
    instance = TooManyAttempts("x", 3) if error is TooManyAttempts else error("x")
    assert exit_code_for(instance) == error.exit_code


def test_the_exit_codes_the_cli_always_had() -> None:
    """The CLI's public exit codes did not move when the table moved into errors.py."""
    assert {e.__name__: e.exit_code for e in EVERY_ERROR if e.exit_code != 1} == {
        "BadRequest": 2,
        "UnknownExtension": 3,
        "UnknownRate": 3,
        "UnknownUser": 3,
        "UnknownHoliday": 3,
        "UnknownReservation": 3,
        "SchemaOutOfDate": 75,
        "ConfigurationError": 78,
    }
    assert exit_code_for(HoldNotSettled("x")) == 1
    assert exit_code_for(RuntimeError("x")) == 1
