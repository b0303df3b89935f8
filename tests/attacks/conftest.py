"""Fixtures of the adversarial review (issue 13): the command line's ledgers, re-exported, and
the service helpers."""

from __future__ import annotations

from tests.cli.conftest import coobill, empty_ledger, ledger, seeded  # noqa: F401
