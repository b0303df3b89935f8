"""`coobill webhooks`, `coobill fee` and `coobill statement` against a real ledger, as an
operator types them; each bad argument is one line on stderr and a non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path

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
    assert len(err.splitlines()) == 1, err
    assert fragment in err, err


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
        assert "failed" in table
        assert "HTTP 500" in table
        again = ok(coobill("webhooks", "retry")).out
        assert again == f"1 event(s) to send again: {failed[0]['id']}\n"
        assert ok(coobill("webhooks", "retry")).out == "no failed events\n"

    def test_bad_arguments_are_one_line_each(self, hooked: str, coobill: Coobill) -> None:
        one_error(coobill("webhooks", "list", "--state", "lost"), "invalid choice")
        one_error(coobill("webhooks", "retry", "x"), "whole number")
        one_error(coobill("webhooks", "retry", "42"), "event 42: no such webhook event")


class TestFees:
    def test_add_list_charge_and_remove(self, ledger: str, coobill: Coobill) -> None:
        ok(coobill("extension", "set", "100", "--billing"))
        ok(coobill("extension", "recharge", "100", "--amount", "10"))
        assert ok(coobill("fee", "add", "100", "--amount", "2.5", "--name", "Line")).out == (
            "fee 1 added: 2.5000 monthly for 100\n")
        listed = json.loads(ok(coobill("fee", "list", "--json")).out)
        assert [(f["extension"], f["amount"], f["over_credit"]) for f in listed] == [
            ("100", "2.5000", "lock")]
        charged = ok(coobill("fee", "charge")).out
        assert charged.startswith("100: fee 1 for ")
        assert "balance 7.5000" in charged
        assert ok(coobill("fee", "charge")).out == ""
        recharges = ok(coobill("recharges", "list", "--json")).out
        newest = json.loads(recharges)[0]
        assert (newest["amount"], newest["who"]) == ("-2.5000", "fee: Line")
        assert ok(coobill("fee", "remove", "1")).out == "fee 1 removed\n"
        assert ok(coobill("audit")).code == 0

    def test_bad_arguments_are_one_line_each(self, ledger: str, coobill: Coobill) -> None:
        ok(coobill("extension", "set", "100", "--billing"))
        one_error(coobill("fee", "add", "100", "--amount", "-1"), "amount")
        one_error(coobill("fee", "add", "100", "--amount", "1", "--period", "daily"),
                  "invalid choice")
        one_error(coobill("fee", "add", "100", "--amount", "1", "--starts", "soon"),
                  "starts: 'soon' is not a day")
        one_error(coobill("fee", "add", "999", "--amount", "1"), "extension 999 does not exist")
        one_error(coobill("fee", "remove", "7"), "fee 7: no such fee")


class TestStatements:
    def test_a_statement_as_html_on_stdout_and_as_pdf(
        self, ledger: str, coobill: Coobill, tmp_path: Path
    ) -> None:
        ok(coobill("extension", "set", "100", "--billing", "--name", "Alice"))
        ok(coobill("extension", "recharge", "100", "--amount", "10"))
        month = ok(coobill("recharges", "list", "--json")).out
        month = json.loads(month)[0]["time"][:7]
        page = ok(coobill("statement", "100", "--month", month)).out
        assert page.startswith("<!doctype html>")
        assert "Opening balance" in page
        assert "US$10.0000" in page
        pdf = tmp_path / "100.pdf"
        assert ok(coobill("statement", "100", "--month", month, "--pdf", str(pdf),
                          "--lang", "zh")).out == ""
        assert pdf.read_bytes().startswith(b"%PDF-")

    def test_the_batch_writes_one_per_billed_extension(
        self, ledger: str, coobill: Coobill, tmp_path: Path
    ) -> None:
        for number in ("100", "1.01"):
            ok(coobill("extension", "set", number, "--billing"))
        folder = tmp_path / "statements"
        folder.mkdir()
        out = ok(coobill("statements", "--month", "2027-01", "--out", str(folder), "--pdf")).out
        assert out.splitlines()[-1] == "2 statement(s) for 2027-01"
        assert sorted(p.name for p in folder.iterdir()) == [
            "statement-1.01-2027-01.html", "statement-1.01-2027-01.pdf",
            "statement-100-2027-01.html", "statement-100-2027-01.pdf"]

    def test_bad_arguments_are_one_line_each(
        self, ledger: str, coobill: Coobill, tmp_path: Path
    ) -> None:
        ok(coobill("extension", "set", "100", "--billing"))
        one_error(coobill("statement", "100", "--month", "2027-13"), "month: '2027-13' is not")
        one_error(coobill("statement", "999", "--month", "2027-01"), "extension 999")
        one_error(coobill("statement", "100", "--month", "2027-01", "--lang", "fr"),
                  "invalid choice")
        one_error(coobill("statements", "--month", "2027-01", "--out", str(tmp_path / "no")),
                  "is not a folder")
        one_error(coobill("statement", "100", "--month", "2027-01", "--pdf",
                          str(tmp_path / "no" / "x.pdf")), "No such file or directory")
