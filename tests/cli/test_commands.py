"""Every `coobill` command round-trips against a real ledger, run in-process as an operator
would type it."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path

import pytest

from coobill.money import fmt
from coobill.services.context import BillingContext
from coobill.services.reservations import reconcile
from coobill.services.settlement import settle_call
from coobill.services.users import authenticate
from coobill.storage import schema
from tests.cli.conftest import RATE, Coobill, authorized, in_ledger, ok
from tests.services.conftest import ended


class TestMigrate:
    def test_migrate_brings_an_empty_ledger_to_head(
        self, empty_ledger: str, coobill: Coobill
    ) -> None:
        head = schema.head_revision()
        assert ok(coobill("migrate")).out == f"database at {head} (head)\n"
        assert ok(coobill("migrate")).out == f"database at {head} (head)\n"
        assert ok(coobill("audit")).out.startswith("audit ok: 0 extension(s)")

    def test_a_command_on_an_unmigrated_ledger_asks_for_migrate(
        self, empty_ledger: str, coobill: Coobill
    ) -> None:
        result = coobill("extension", "list")
        assert result.code == 75
        assert len(result.err.splitlines()) == 1
        assert "run `coobill migrate`" in result.err


class TestExtensions:
    def test_set_creates_and_show_json_reads_it_back(self, ledger: str, coobill: Coobill) -> None:
        out = ok(coobill("extension", "set", "100", "--name", "Alice", "--billing",
                         "--payment", "postpaid", "--credit", "7.5")).out
        assert "Alice" in out
        assert "postpaid" in out
        shown = json.loads(ok(coobill("extension", "show", "100", "--json")).out)
        assert shown == {
            "extension": "100", "name": "Alice", "billing": True, "payment": "postpaid",
            "credit_limit": "7.5000", "balance": "0.0000", "total_recharged": "0.0000",
            "reserved": "0.0000", "locked": False,
        }

    def test_set_changes_only_what_it_is_given(self, seeded: str, coobill: Coobill) -> None:
        ok(coobill("extension", "set", "100", "--lock", "--no-billing"))
        shown = json.loads(ok(coobill("extension", "show", "100", "--json")).out)
        assert (shown["name"], shown["locked"], shown["billing"], shown["credit_limit"]) == (
            "Alice", True, False, "5.0000",
        )
        ok(coobill("extension", "set", "100", "--unlock"))
        assert json.loads(coobill("extension", "show", "100", "--json").out)["locked"] is False

    def test_changing_the_payment_method_resets_total_recharged(
        self, seeded: str, coobill: Coobill
    ) -> None:
        ok(coobill("extension", "set", "100", "--payment", "postpaid"))
        shown = json.loads(ok(coobill("extension", "show", "100", "--json")).out)
        assert (shown["total_recharged"], shown["balance"]) == ("0.0000", "10.0000")

    def test_recharge_prints_each_balance_before_and_after(
        self, seeded: str, coobill: Coobill
    ) -> None:
        out = ok(coobill("extension", "recharge", "100", "101", "--amount", "2.5")).out
        assert out.splitlines() == [
            "100: 10.0000 + 2.5000 = 12.5000",
            "101: 10.0000 + 2.5000 = 12.5000",
        ]

    def test_adjust_corrects_a_balance_by_a_signed_amount(
        self, seeded: str, coobill: Coobill
    ) -> None:
        adjusted = ok(coobill("extension", "adjust", "100", "--amount", "-1.25", "--note", "x"))
        assert adjusted.out == "100: balance 8.7500\n"

    def test_list_as_json_and_csv_with_filters(self, seeded: str, coobill: Coobill) -> None:
        ok(coobill("extension", "set", "101", "--lock", "--payment", "postpaid"))
        listed = json.loads(ok(coobill("extension", "list", "--json")).out)
        assert [e["extension"] for e in listed] == ["100", "101"]
        locked = json.loads(ok(coobill("extension", "list", "--locked", "--json")).out)
        assert [e["extension"] for e in locked] == ["101"]
        prepaid = json.loads(ok(coobill("extension", "list", "--payment", "prepaid", "--json")).out)
        assert [e["extension"] for e in prepaid] == ["100"]
        rows = list(csv.DictReader(io.StringIO(ok(coobill("extension", "list", "--csv")).out)))
        assert [(r["extension"], r["name"], r["balance"]) for r in rows] == [
            ("100", "Alice", "10.0000"), ("101", "Bob", "10.0000"),
        ]
        table = ok(coobill("extension", "list", "--unlocked")).out.splitlines()
        assert table[0].split()[:2] == ["extension", "name"]
        assert len(table) == 2


class TestRates:
    def test_add_list_edit_disable_and_delete(self, seeded: str, coobill: Coobill) -> None:
        listed = json.loads(ok(coobill("rate", "list", "--json")).out)
        assert [(r["id"], r["prefix"], r["rate"], r["remark"], r["enabled"]) for r in listed] == [
            (1, "00", "0.0500", "intl", True)
        ]
        out = ok(coobill("rate", "edit", "1", "--rate", "0.07", "--start", "08:00",
                         "--disable")).out
        assert "0.0700" in out
        assert "08:00" in out
        [row] = list(csv.DictReader(io.StringIO(ok(coobill("rate", "list", "--csv")).out)))
        assert (row["rate"], row["start"], row["enabled"]) == ("0.0700", "08:00", "False")
        ok(coobill("rate", "edit", "1", "--enable"))
        assert json.loads(coobill("rate", "list", "--json").out)[0]["enabled"] is True
        assert ok(coobill("rate", "delete", "1")).out == "rate 1 deleted\n"
        assert json.loads(ok(coobill("rate", "list", "--json")).out) == []

    def test_add_for_chosen_extensions_and_disabled(self, seeded: str, coobill: Coobill) -> None:
        for_two = [*RATE[:-1], "100,101"]
        assert ok(coobill("rate", "add", *for_two, "--disabled")).out == "rate 2 added\n"
        rate = json.loads(coobill("rate", "list", "--json").out)[1]
        assert (rate["extensions"], rate["enabled"]) == ("100,101", False)

    def test_export_then_import_replace_gives_back_the_same_rates(
        self, seeded: str, coobill: Coobill, tmp_path: Path
    ) -> None:
        ok(coobill("rate", "add", *RATE[:1], "0086", *RATE[2:-1], "100", "--remark", "cn, mobile"))
        before = json.loads(coobill("rate", "list", "--json").out)
        deck = tmp_path / "deck.csv"
        deck.write_text(ok(coobill("rate", "export")).out)
        assert ok(coobill("rate", "import", str(deck), "--replace")).out == "2 rate(s) imported\n"
        after = json.loads(coobill("rate", "list", "--json").out)
        assert [{k: v for k, v in r.items() if k != "id"} for r in after] == [
            {k: v for k, v in r.items() if k != "id"} for r in before
        ]
        assert ok(coobill("rate", "import", str(deck))).out == "2 rate(s) imported\n"
        assert len(json.loads(coobill("rate", "list", "--json").out)) == 4

    def test_a_weekend_and_holiday_rate_and_the_holiday_calendar(
        self, seeded: str, coobill: Coobill
    ) -> None:
        ok(coobill("settings", "set", "--timezone", "Asia/Shanghai"))
        ok(coobill("rate", "edit", "1", "--days", "mon,tue,wed,thu,fri", "--holidays", "except"))
        assert ok(coobill("rate", "add", *RATE[:9], "0.02", *RATE[10:], "--days", "sun,sat",
                          "--remark", "weekend")).out == "rate 2 added\n"
        ok(coobill("rate", "add", *RATE[:9], "0.03", *RATE[10:], "--holidays", "only",
                   "--valid-until", "2028-01-01 00:00", "--split"))
        rows = json.loads(ok(coobill("rate", "list", "--json")).out)
        assert [(r["days"], r["holidays"], r["valid_until"], r["split"]) for r in rows] == [
            ("mon,tue,wed,thu,fri", "except", "", False), ("sat,sun", "any", "", False),
            ("all", "only", "2028-01-01 00:00", True)]
        assert ok(coobill("holiday", "add", "2026-10-01", "--yearly", "--name", "National Day")
                  ).out == "holiday 1 added: every 10-01 National Day\n"
        assert json.loads(ok(coobill("holiday", "list", "--json")).out) == [
            {"id": 1, "day": "every 10-01", "yearly": True, "name": "National Day"}]

        def rate_at(moment: str) -> int:
            return json.loads(ok(coobill("rate", "quote", "100", "0012345678", "--at", moment,
                                         "--json")).out)["rate_id"]

        # 2027-10-01 is a Friday and the holiday; 2027-10-02 a Saturday
        assert [rate_at(m) for m in ("2027-09-30 12:00", "2027-10-01 12:00",
                                     "2027-10-02 12:00")] == [1, 3, 2]
        ok(coobill("rate", "edit", "2", "--days", "", "--holidays", "except"))
        assert [rate_at(m) for m in ("2027-09-30 12:00", "2027-10-01 12:00")] == [1, 3]
        ok(coobill("rate", "edit", "3", "--holidays", "any", "--days", "thu"))
        # a holiday Friday: the weekday rate and rate 2 exclude it, rate 3 is for Thursdays
        assert [rate_at(m) for m in ("2027-09-30 12:00", "2027-10-01 12:00")] == [1, None]
        assert ok(coobill("holiday", "remove", "2030-10-01")).out == "1 holiday(s) removed\n"
        assert rate_at("2027-10-01 12:00") == 1
        ok(coobill("rate", "edit", "3", "--valid-until", "", "--no-split"))
        assert json.loads(coobill("rate", "list", "--json").out)[2]["valid_until"] == ""

    def test_a_dated_carrier_deck_reviewed_by_a_dry_run_then_imported(
        self, seeded: str, coobill: Coobill, tmp_path: Path
    ) -> None:
        deck = tmp_path / "carrier.csv"
        deck.write_text("prefix,description,rate_per_minute,connect_fee,initial_increment,"
                        "increment\n0044,UK,0.06,0.01,30,6\n00,World,0.3\n")
        before = ok(coobill("rate", "list", "--csv")).out
        dry = ok(coobill("rate", "import", str(deck), "--from", "2027-01-01 00:00", "--dry-run"))
        assert dry.out.splitlines() == [
            "+ 0044 (any length, 00:00-23:59, *): 0.0400 for 30 s, then 0.0060 per 6 s",
            "~ 00 (any length, 00:00-23:59, *): 0.1000 for 60 s, then 0.0500 per 60 s -> "
            "0.3000 for 60 s, then 0.3000 per 60 s",
            "1 added, 0 removed, 1 changed, 0 unchanged",
            "dry run: nothing written (2 rate(s) in the deck)",
        ]
        assert ok(coobill("rate", "list", "--csv")).out == before
        assert ok(coobill("rate", "import", str(deck), "--from", "2027-01-01 00:00")).out == (
            "2 rate(s) imported, in force from 2027-01-01 00:00\n")
        listed = json.loads(ok(coobill("rate", "list", "--json")).out)
        assert [(r["remark"], r["valid_from"], r["valid_until"]) for r in listed] == [
            ("intl", "", "2027-01-01 00:00"), ("UK", "2027-01-01 00:00", ""),
            ("World", "2027-01-01 00:00", "")]
        quote = json.loads(ok(coobill("rate", "quote", "100", "0044123", "--at",
                                      "2027-01-01 00:00", "--seconds", "45", "--json")).out)
        assert (quote["rate_id"], quote["cost"]) == (2, "0.0580")

    def test_quote_gives_the_rate_cost_and_limit(self, seeded: str, coobill: Coobill) -> None:
        quote = json.loads(ok(coobill("rate", "quote", "100", "0012345678", "--seconds", "61",
                                      "--at", "12:00", "--json")).out)
        assert quote["rate_id"] == 1
        assert quote["at"] == "12:00"
        assert (quote["cost"], quote["funds"], quote["limit_seconds"]) == (
            "0.1500", "15.0000", 10800,
        )
        text = ok(coobill("rate", "quote", "100", "0012345678", "--seconds", "61")).out
        assert text.splitlines()[1:] == ["61 s cost 0.1500", "funds 15.0000 buy 10800 s (3:00:00)"]
        assert ok(coobill("rate", "quote", "100", "123")).out.startswith("no rate applies")


class TestRecords:
    def test_recharges_list_by_range_and_keyword(self, seeded: str, coobill: Coobill) -> None:
        listed = json.loads(ok(coobill("recharges", "list", "--json")).out)
        assert sorted((r["extension"], r["amount"], r["who"]) for r in listed) == [
            ("100", "10.0000", "cli"), ("101", "10.0000", "cli"),
        ]
        bob = json.loads(ok(coobill("recharges", "list", "--keyword", "BOB", "--json")).out)
        assert [r["name"] for r in bob] == ["Bob"]
        none = json.loads(ok(coobill("recharges", "list", "--to", "2000-01-01", "--json")).out)
        assert none == []

    def test_calls_list_shows_a_settled_call(self, seeded: str, coobill: Coobill) -> None:
        authorized("call-1")
        in_ledger(lambda ctx: settle_call(
            ctx, ended("call-1", billsec=61, name="Alice", start=datetime(2026, 11, 22, 9, 30))
        ))
        [call] = json.loads(ok(coobill("calls", "list", "--from", "2026-11-22", "--to",
                                       "2026-11-22", "--json")).out)
        assert (call["uniqueid"], call["extension"], call["cost"], call["billsec"],
                call["billable_time"], call["gated"]) == (
                    "call-1", "100", "0.1500", 61, "01:01", True)
        rows = list(
            csv.DictReader(
                io.StringIO(ok(coobill("calls", "list", "--keyword", "alice", "--csv")).out)
            )
        )
        assert [r["uniqueid"] for r in rows] == ["call-1"]
        assert json.loads(coobill("calls", "list", "--from", "2026-11-23", "--json").out) == []

    def test_stats_by_day_month_and_year(self, seeded: str, coobill: Coobill) -> None:
        for i, (ext, day) in enumerate([("100", 1), ("100", 2), ("101", 2)]):
            authorized(f"c{i}", ext)
            in_ledger(
                lambda ctx, i=i, ext=ext, day=day: settle_call(
                    ctx,
                    ended(f"c{i}", extension=ext, billsec=120, start=datetime(2026, 11, day, 9)),
                )
            )
        by_day = json.loads(ok(coobill("stats", "--by", "day", "--json")).out)
        assert [(r["date"], r["extension"], r["calls"]) for r in by_day] == [
            ("2026-11-01", "All", 1),
            ("2026-11-02", "All", 2),
        ]
        split = json.loads(ok(coobill("stats", "--by", "day", "--per-extension", "--json")).out)
        assert [(r["date"], r["extension"], r["calls"]) for r in split] == [
            ("2026-11-01", "100", 1),
            ("2026-11-02", "100", 1),
            ("2026-11-02", "101", 1),
        ]
        by_month = json.loads(
            ok(
                coobill("stats", "--by", "month", "--extension", "100", "--per-extension", "--json")
            ).out
        )
        assert by_month == [
            {
                "date": "2026-11",
                "extension": "100",
                "calls": 2,
                "answered": 2,
                "total_duration": "04:00",
                "total_seconds": 240,
                "average_duration": "02:00",
                "average_seconds": 120,
                "total_cost": "0.3000",
            }
        ]
        rows = list(
            csv.DictReader(
                io.StringIO(
                    ok(coobill("stats", "--by", "year", "--from", "2026-01-01", "--csv")).out
                )
            )
        )
        assert [(r["date"], r["extension"], r["total_cost"]) for r in rows] == [
            ("2026", "All", "0.4500"),
        ]


class TestSettingsUsersAndHolds:
    def test_settings_set_then_show(self, ledger: str, coobill: Coobill) -> None:
        ok(
            coobill(
                "settings",
                "set",
                "--billing",
                "off",
                "--currency",
                "JPY",
                "--symbol",
                "¥",
                "--timezone",
                "Asia/Tokyo",
            )
        )
        assert json.loads(ok(coobill("settings", "show", "--json")).out) == {
            "billing": "off",
            "currency": "JPY",
            "currency_symbol": "¥",
            "timezone": "Asia/Tokyo",
        }
        ok(coobill("settings", "set", "--currency", "EUR"))
        assert "€" in ok(coobill("settings", "show")).out

    def test_user_add_with_a_password_then_log_in(self, ledger: str, coobill: Coobill) -> None:
        assert (
            ok(
                coobill("user", "add", "alice", "--role", "admin", "--password", "correct horse")
            ).out
            == "user alice (admin) added\n"
        )
        assert in_ledger(lambda ctx: authenticate(ctx, "alice", "correct horse")) is not None

    def test_user_add_reads_the_password_from_stdin(
        self, ledger: str, coobill: Coobill, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr("sys.stdin", io.StringIO("battery staple\n"))
        ok(coobill("user", "add", "bob", "--role", "billing"))
        assert in_ledger(lambda ctx: authenticate(ctx, "bob", "battery staple")) is not None

    def test_users_are_listed_given_new_passwords_and_removed(
        self, ledger: str, coobill: Coobill
    ) -> None:
        ok(coobill("user", "add", "root", "--role", "admin", "--password", "correct horse"))
        ok(coobill("user", "add", "bob", "--role", "billing", "--password", "battery staple"))
        assert json.loads(ok(coobill("user", "list", "--json")).out) == [
            {"name": "bob", "role": "billing", "language": "en"},
            {"name": "root", "role": "admin", "language": "en"},
        ]
        assert ok(coobill("user", "list", "--csv")).out.splitlines()[0] == "name,role,language"
        assert ok(coobill("user", "passwd", "bob", "--password", "new secret")).out == (
            "password of user bob set\n"
        )
        assert in_ledger(lambda ctx: authenticate(ctx, "bob", "battery staple")) is None
        assert in_ledger(lambda ctx: authenticate(ctx, "bob", "new secret")) is not None
        assert ok(coobill("user", "remove", "bob")).out == "user bob (billing) removed\n"
        assert in_ledger(lambda ctx: authenticate(ctx, "bob", "new secret")) is None
        assert "root" in ok(coobill("user", "list")).out

    def test_reservations_list_release_and_charge(self, seeded: str, coobill: Coobill) -> None:
        first, second = authorized("live-1"), authorized("live-2", "101")
        held = json.loads(ok(coobill("reservations", "list", "--json")).out)
        assert sorted((h["uniqueid"], h["amount"]) for h in held) == [
            ("live-1", fmt(first.held)),
            ("live-2", fmt(second.held)),
        ]
        assert json.loads(ok(coobill("reservations", "list", "--flagged", "--json")).out) == []
        # A live call's hold is its own evidence's to settle: refused, one line, exit 3.
        refused = coobill("reservations", "release", "live-1")
        assert (refused.code, refused.out) == (3, "")
        assert refused.err == "coobill: call live-1 has no flagged hold to resolve\n"
        # Their channels went while AMI was away: flagged for a billing user.
        in_ledger(lambda ctx: reconcile(ctx, set(), asked_at=datetime(2100, 1, 1)))
        flagged = json.loads(ok(coobill("reservations", "list", "--flagged", "--json")).out)
        assert sorted(h["uniqueid"] for h in flagged) == ["live-1", "live-2"]
        assert ok(coobill("reservations", "release", "live-1")).out == (
            "released the hold of call live-1\n"
        )
        assert ok(coobill("reservations", "charge", "live-2", "--seconds", "61")).out == (
            "call live-2 charged 0.1500\n"
        )
        assert json.loads(coobill("reservations", "list", "--json").out) == []
        bob = json.loads(coobill("extension", "show", "101", "--json").out)
        assert bob["balance"] == "9.8500"
        assert "uniqueid" in ok(coobill("reservations", "list")).out

    def test_audit_passes_after_commands_and_calls(self, seeded: str, coobill: Coobill) -> None:
        authorized("c1")
        in_ledger(lambda ctx: settle_call(ctx, ended("c1", billsec=300)))
        ok(coobill("extension", "adjust", "101", "--amount", "-3"))
        ok(coobill("extension", "set", "100", "--payment", "postpaid"))
        assert ok(coobill("audit")).out == "audit ok: 2 extension(s), 4 ledger entries\n"

    def test_audit_reports_a_tampered_balance_and_exits_1(
        self, seeded: str, coobill: Coobill
    ) -> None:
        from sqlalchemy import text

        async def tamper(ctx: BillingContext) -> None:
            async with ctx.uow() as uow:
                await uow.session.execute(text("UPDATE extension SET balance = 1"))
                await uow.commit()

        in_ledger(tamper)
        result = coobill("audit")
        assert (result.code, result.out) == (1, "")
        assert len(result.err.splitlines()) == 2
        for line in result.err.splitlines():
            assert line.startswith("coobill: audit: extension ")
