"""The commands that talk to the PBX: `coobill extension sync` and `coobill doctor`, against a
fake Asterisk manager that answers as the recorded lab did."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator

import pytest

from tests.cli.conftest import Coobill
from tests.fakes.ami_server import EndpointBook, FakeAmiServer


@pytest.fixture
def pbx(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAmiServer]:
    """A fake manager on its own loop and thread (the CLI runs its own asyncio.run)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = FakeAmiServer(secret="lab-secret", endpoints=EndpointBook.from_pjsip_lab())
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(5)
    monkeypatch.setenv("COOBILL_AMI__PORT", str(server.port))
    monkeypatch.setenv("COOBILL_AMI__SECRET", "lab-secret")
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


class TestExtensionSync:
    def test_phones_get_billing_rows_with_their_names_and_trunks_none(
        self, ledger: str, pbx: FakeAmiServer, coobill: Coobill
    ) -> None:
        """The lab PBX has phones 100 Alice, 101 Bob, 102 "Carol Wu" and two carriers."""
        assert coobill("extension", "set", "100", "--name", "Front desk", "--credit", "5").code == 0
        synced = coobill("extension", "sync")
        assert (synced.code, synced.out.strip()) == (0, "2 new extension(s): 101, 102")
        listed = json.loads(coobill("extension", "list", "--json").out)
        assert [(e["extension"], e["name"], e["billing"], e["credit_limit"]) for e in listed] == [
            ("100", "Front desk", False, "5.0000"),
            ("101", "Bob", False, "0.0000"),
            ("102", "Carol Wu", False, "0.0000"),
        ]
        again = coobill("extension", "sync")
        assert (again.code, again.out.strip()) == (0, "no new extensions")

    def test_a_pbx_that_cannot_be_reached_is_one_line_and_a_non_zero_exit(
        self, ledger: str, coobill: Coobill, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("COOBILL_AMI__PORT", "1")  # nothing listens there
        result = coobill("extension", "sync")
        assert result.code != 0
        assert result.out == ""
        assert len(result.err.strip().splitlines()) == 1
        assert "coobill:" in result.err


class TestDoctor:
    def test_it_says_what_is_fine_and_what_to_fix(
        self, ledger: str, pbx: FakeAmiServer, coobill: Coobill, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("COOBILL_AGI__PORT", "1")  # no daemon runs in this test
        result = coobill("doctor")
        assert result.code == 1
        lines = result.out.splitlines()
        assert any(ln.startswith("ok") and "schema at head" in ln for ln in lines)
        assert any(ln.startswith("ok") and "AMI login as coobill" in ln for ln in lines)
        assert any(ln.startswith("FIX") and "gate's port" in ln for ln in lines)
        assert any("coobill" in ln and "->" in ln for ln in lines)

    def test_a_refused_ami_login_is_reported_with_the_fix(
        self, ledger: str, pbx: FakeAmiServer, coobill: Coobill, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("COOBILL_AMI__SECRET", "wrong")
        result = coobill("doctor")
        assert result.code == 1
        assert any(ln.startswith("FIX") and "AMI login" in ln for ln in result.out.splitlines())
        assert "wrong" not in result.out


class TestRun:
    def test_the_daemon_refuses_a_ledger_behind_the_migrations_and_says_so(
        self, empty_ledger: str, coobill: Coobill, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("COOBILL_AGI__PORT", "0")
        monkeypatch.setenv("COOBILL_WEB__ENABLED", "false")
        monkeypatch.setenv("COOBILL_AMI__ENABLED", "false")
        result = coobill("run")
        assert result.code == 75
        assert result.err.strip().endswith("run `coobill migrate`")
        assert len(result.err.strip().splitlines()) == 1
