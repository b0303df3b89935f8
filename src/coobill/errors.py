"""The errors coobill raises on purpose.

CoobillError
 +-- BadRequest            input that can never be right (bad amount, bad prefix, bad window)
 +-- UnknownExtension      the extension is not in the database
 +-- UnknownRate           no rate has that id
 +-- UnknownUser           no portal user has that name
 +-- UnknownReservation    no funds are held for that call
 +-- ConfigurationError    a configuration value is wrong
 +-- SchemaOutOfDate       the database is not at the migrations' head

Each adapter maps these in one table: the gate to a DENY reason, the portal to an HTTP status,
the CLI to an exit code and one line on stderr.
"""

from __future__ import annotations


class CoobillError(Exception):
    """Base of every error coobill raises on purpose."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class BadRequest(CoobillError):
    """Input that can never be right, whatever the state of the ledger."""


class UnknownExtension(CoobillError):
    """The extension is not in the database."""


class UnknownRate(CoobillError):
    """No rate has that id."""


class UnknownUser(CoobillError):
    """No portal user has that name."""


class UnknownReservation(CoobillError):
    """No funds are held for that call (settled already, or never allowed)."""


class ConfigurationError(CoobillError):
    """A configuration value is wrong; the message names the key."""


class SchemaOutOfDate(CoobillError):
    """The database schema is behind the migrations' head."""
