"""The errors coobill raises on purpose, and what each adapter makes of them.

CoobillError                 a state the request cannot apply to (a hold settled already)
 +-- BadRequest              input that can never be right (bad amount, bad prefix, bad window)
 +-- UnknownExtension        the extension is not in the database
 +-- UnknownRate             no rate has that id
 +-- UnknownHoliday          no holiday is on that date (or has that id)
 +-- UnknownUser             no portal user has that name
 +-- UnknownReservation      no funds are held for that call
 +-- HoldNotSettled          a flagged hold that charging could not settle
 +-- ConfigurationError      a configuration value is wrong
 +-- SchemaOutOfDate         the database is not at the migrations' head
 +-- PasswordChecksBusy      too many password checks at once
 +-- LoginRequired           the portal: no valid session
 +-- Forbidden               the portal: the user's role may not do this
 +-- CsrfRefused             the portal: an unsafe request without the session's CSRF token
 +-- TooManyAttempts         the portal: too many failed logins
 +-- NotFound                the portal: nothing at this address
 +-- EndpointListingUnavailable  the PBX listed no endpoints
 +-- AmiError                the manager interface did not do what was asked
      +-- AmiLoginRefused, AmiTimeout, AmiConnectionLost, AmiNotConnected

This module is the one table: each class states its `kind` (the API's "error" word), its
`http_status` (the portal's and the API's answer) and its `exit_code` (the CLI's,
sysexits-style where one fits). Every subclass states all three itself, not by inheritance,
so a new error is a decision, not a fall-through (tests/test_errors.py checks every one).
The gate does not raise these at a call: it answers DENY with a reason (services/commands.py).
"""

from __future__ import annotations

from typing import ClassVar


class CoobillError(Exception):
    """Base of every error coobill raises on purpose: a state the request cannot apply to."""

    kind: ClassVar[str] = "conflict"
    http_status: ClassVar[int] = 409
    exit_code: ClassVar[int] = 1
    # Seconds an HTTP client should wait before it asks again (a Retry-After header);
    # None: no header.
    retry_after: int | None = None

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class BadRequest(CoobillError):
    """Input that can never be right, whatever the state of the ledger."""

    kind, http_status, exit_code = "bad_request", 400, 2


class UnknownExtension(CoobillError):
    """The extension is not in the database."""

    kind, http_status, exit_code = "unknown_extension", 404, 3


class UnknownRate(CoobillError):
    """No rate has that id."""

    kind, http_status, exit_code = "unknown_rate", 404, 3


class UnknownHoliday(CoobillError):
    """No holiday of the calendar is on that date (or has that id)."""

    kind, http_status, exit_code = "unknown_holiday", 404, 3


class UnknownUser(CoobillError):
    """No portal user has that name."""

    kind, http_status, exit_code = "unknown_user", 404, 3


class UnknownReservation(CoobillError):
    """No funds are held for that call (settled already, or never allowed)."""

    kind, http_status, exit_code = "unknown_reservation", 404, 3


class HoldNotSettled(CoobillError):
    """Charging a flagged hold settled nothing (its evidence closed it meanwhile)."""

    kind, http_status, exit_code = "not_found", 404, 1


class ConfigurationError(CoobillError):
    """A configuration value is wrong; the message names the key."""

    kind, http_status, exit_code = "configuration", 500, 78  # EX_CONFIG


class SchemaOutOfDate(CoobillError):
    """The database schema is behind the migrations' head."""

    kind, http_status, exit_code = "schema_out_of_date", 503, 75  # EX_TEMPFAIL


class PasswordChecksBusy(CoobillError):
    """Too many password checks at once: try again in a moment."""

    kind, http_status, exit_code = "busy", 503, 1
    retry_after = 1


# --- the portal's own refusals -------------------------------------------------------------


class LoginRequired(CoobillError):
    """No valid session: log in first."""

    kind, http_status, exit_code = "login_required", 401, 1


class Forbidden(CoobillError):
    """The user's role may not do this."""

    kind, http_status, exit_code = "forbidden", 403, 1


class CsrfRefused(CoobillError):
    """An unsafe request without the session's CSRF token."""

    kind, http_status, exit_code = "csrf", 403, 1


class TooManyAttempts(CoobillError):
    """Too many failed logins for this name from this address."""

    kind, http_status, exit_code = "too_many_attempts", 429, 1

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, field="password")
        self.retry_after = retry_after


class NotFound(CoobillError):
    """Nothing at this address (a hold that is gone, a page that does not exist)."""

    kind, http_status, exit_code = "not_found", 404, 1


# --- the PBX -------------------------------------------------------------------------------


class EndpointListingUnavailable(CoobillError):
    """Neither PJSIPShowEndpoints nor SIPpeers answered with a listing."""

    kind, http_status, exit_code = "pbx_unavailable", 503, 1


class AmiError(CoobillError):
    """The manager interface did not do what was asked."""

    kind, http_status, exit_code = "pbx_unavailable", 503, 1


class AmiLoginRefused(AmiError):
    """Asterisk refused the username or secret."""

    kind, http_status, exit_code = "pbx_unavailable", 503, 1


class AmiTimeout(AmiError):
    """An action got no answer in time."""

    kind, http_status, exit_code = "pbx_unavailable", 503, 1


class AmiConnectionLost(AmiError):
    """The connection ended while an answer was awaited."""

    kind, http_status, exit_code = "pbx_unavailable", 503, 1


class AmiNotConnected(AmiError):
    """No logged-in AMI session right now."""

    kind, http_status, exit_code = "pbx_unavailable", 503, 1


__all__ = [
    "AmiConnectionLost",
    "AmiError",
    "AmiLoginRefused",
    "AmiNotConnected",
    "AmiTimeout",
    "BadRequest",
    "ConfigurationError",
    "CoobillError",
    "CsrfRefused",
    "EndpointListingUnavailable",
    "Forbidden",
    "HoldNotSettled",
    "LoginRequired",
    "NotFound",
    "PasswordChecksBusy",
    "SchemaOutOfDate",
    "TooManyAttempts",
    "UnknownExtension",
    "UnknownHoliday",
    "UnknownRate",
    "UnknownReservation",
    "UnknownUser",
]
