"""`coobill webhooks`, `coobill fee` and `coobill statement` against a real ledger, as an
operator types them; each bad argument is one line on stderr and a non-zero exit."""

from __future__ import annotations

import json

import pytest

from coobill.services import outbox
from coobill.services.context import BillingContext
from tests.cli.conftest import Coobill, in_ledger, ok


@pytest.fixture
def hooked(ledger: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COOBILL_WEBHOOKS__URLS", '["http://127.0.0.1:9/hook"]')
    monkeypatch.setenv("COOBILL_WEBHOOKS__SECRET", "s" * 32)
    monkeypatch.setenv("COOBILL_WEBHOOKS__MAX_ATTEMPTS", "1")
    return ledger


def one_error(result: object, fragment: str) -> None:
    assert result.code != 0  # type: ignore[attr-defined]
    err = result.err  # type: ignore[attr-defined]
    assert len(err.splitlines()) == 1 and fragment in err, err


class TestWebhooks:
    def test_list_shows_each_event_and_retry_sends_the_failed_again(
        self, hooked: str, coobill: Coobill
    ) -> None:
        ok(coobill("extension", "set", "100", "--billing"))
        ok(coobill("extension", "recharge", "100", "--amount", "5"))
        ok(coobill("extension", "adjust", "100", "--amount", "-1"))
        listed = json.loads(ok(coobill("webhooks", "list", "--json")).out)
        assert [(e["kind"], e["extension"], e["state"]) for e in listed] == [
            ("adjustment", "100", "pending"), ("recharge", "100", "pending")]

        async def fail_first(ctx: BillingContext) -> None:
            first = (await outbox.due(ctx))[0]
            await outbox.attempt_failed(ctx, first, [], "HTTP 500")

        in_ledger(fail_first)
        failed = json.loads(ok(coobill("webhooks", "list", "--state", "failed", "--json")).out)
        assert [(e["kind"], e["last_error"]) for e in failed] == [("recharge", "HTTP 500")]
        table = ok(coobill("webhooks", "list")).out
        assert "failed" in table and "HTTP 500" in table
        assert ok(coobill("webhooks", "retry")).out == f"1 event(s) to send again: {failed[0]['id']}\n"
        assert ok(coobill("webhooks", "retry")).out == "no failed events\n"

    def test_bad_arguments_are_one_line_each(self, hooked: str, coobill: Coobill) -> None:
        one_error(coobill("webhooks", "list", "--state", "lost"), "invalid choice")
        one_error(coobill("webhooks", "retry", "x"), "whole number")
        one_error(coobill("webhooks", "retry", "42"), "event 42: no such webhook event")
