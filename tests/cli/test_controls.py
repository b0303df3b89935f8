"""The account controls from the command line: an extension's caps and threshold with
`coobill extension set`, the site's defaults with `coobill settings set`, `none` to clear;
bad amounts are one line on stderr and change nothing."""

from __future__ import annotations

import json

from coobill.services.commands import AuthorizeCall
from coobill.services.refused import RefusedLog
from tests.cli.conftest import RATE, Coobill, authorized, in_ledger, ok, snapshot


class TestAnExtensionsControls:
    def test_set_shows_and_clears_them(self, ledger: str, coobill: Coobill) -> None:
        out = ok(coobill("extension", "set", "100", "--billing", "--cap-daily", "5",
                         "--cap-monthly", "50", "--max-call-cost", "2",
                         "--max-price-minute", "0.3", "--low-balance", "1.5")).out
        assert "cap_daily" in out
        assert "5.0000" in out
        shown = json.loads(ok(coobill("extension", "show", "100", "--json")).out)
        assert {k: shown[k] for k in ("cap_daily", "cap_monthly", "max_call_cost",
                                      "max_price_minute", "low_balance")} == {
            "cap_daily": "5.0000", "cap_monthly": "50.0000", "max_call_cost": "2.0000",
            "max_price_minute": "0.3000", "low_balance": "1.5000"}
        ok(coobill("extension", "set", "100", "--cap-daily", "none", "--cap-monthly", "none",
                   "--max-call-cost", "none", "--max-price-minute", "none",
                   "--low-balance", "none"))
        shown = json.loads(ok(coobill("extension", "show", "100", "--json")).out)
        assert "cap_daily" not in shown  # no control set: shown as before there were any

    def test_the_gate_refuses_with_the_caps_reason(self, ledger: str, coobill: Coobill) -> None:
        ok(coobill("extension", "set", "100", "--billing", "--cap-daily", "0.05"))
        ok(coobill("extension", "recharge", "100", "--amount", "10"))
        ok(coobill("rate", "add", *RATE))
        verdict = authorized("u1")
        assert not verdict.allowed
        assert verdict.reason == "cap_daily"

    def test_a_bad_amount_is_one_line_and_changes_nothing(
        self, ledger: str, coobill: Coobill
    ) -> None:
        ok(coobill("extension", "set", "100"))
        before = snapshot(ledger)
        result = coobill("extension", "set", "100", "--name", "X", "--cap-daily", "-3")
        assert result.code != 0
        assert len(result.err.splitlines()) == 1
        assert "cap_daily" in result.err
        assert snapshot(ledger) == before


class TestTheSitesDefaults:
    def test_settings_set_and_show(self, ledger: str, coobill: Coobill) -> None:
        ok(coobill("settings", "set", "--cap-daily", "20", "--low-balance", "2"))
        shown = json.loads(ok(coobill("settings", "show", "--json")).out)
        assert shown["cap_daily"] == "20.0000"
        assert shown["low_balance"] == "2.0000"
        assert shown["cap_monthly"] == ""
        ok(coobill("settings", "set", "--cap-daily", "none", "--low-balance", "none"))
        assert "cap_daily" not in json.loads(ok(coobill("settings", "show", "--json")).out)

    def test_the_minimum_margin_is_set_shown_and_cleared(
        self, ledger: str, coobill: Coobill
    ) -> None:
        assert "min_margin" in ok(coobill("settings", "set", "--min-margin", "0.03")).out
        assert json.loads(ok(coobill("settings", "show", "--json")).out)["min_margin"] == "0.0300"
        refused = coobill("settings", "set", "--min-margin", "-1")
        assert refused.code != 0
        assert refused.err == "coobill: min_margin: '-1' must not be negative\n"
        ok(coobill("settings", "set", "--min-margin", "none"))
        assert "min_margin" not in json.loads(ok(coobill("settings", "show", "--json")).out)

    def test_a_bad_default_is_refused(self, ledger: str, coobill: Coobill) -> None:
        result = coobill("settings", "set", "--max-price-minute", "cheap")
        assert result.code != 0
        assert "max_price_minute" in result.err


class TestRefusedCalls:
    def test_calls_list_shows_the_refused_ones_apart(self, ledger: str, coobill: Coobill) -> None:
        ok(coobill("extension", "set", "100", "--billing"))
        ok(coobill("rate", "add", *RATE))

        async def refuse(ctx):  # type: ignore[no-untyped-def]
            log = RefusedLog(ctx)
            log.note(AuthorizeCall("u1", "100", "0012345678"), authorized_now, 0.003)
            await log.flush()

        authorized_now = authorized("u1")
        assert authorized_now.reason == "no_funds"
        in_ledger(refuse)
        rows = json.loads(ok(coobill("calls", "list", "--outcome", "refused", "--json")).out)
        assert [(r["extension"], r["number"], r["reason"], r["latency_ms"]) for r in rows] == [
            ("100", "0012345678", "no_funds", "3.0000")]
        assert json.loads(ok(coobill("calls", "list", "--json")).out) == []
        bad = coobill("calls", "list", "--outcome", "maybe")
        assert bad.code == 2
        assert len(bad.err.splitlines()) == 1
