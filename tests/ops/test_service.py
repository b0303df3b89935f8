"""Running coobill like a PBX service: health and metrics, systemd notifications, reloads,
draining on SIGTERM, logs an operator can grep, and `coobill doctor`."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from coobill.config import LogConfig, Settings
from coobill.daemon import Daemon
from coobill.logs import JsonFormatter, configure_logging, fields_of
from coobill.services.balances import recharge
from coobill.services.context import BillingContext
from coobill.services.extensions import ExtensionChanges, set_extension
from tests.fakes.ami_server import FakeAmiServer, event_frames
from tests.fakes.asterisk_agi import TRACES_DIR, FakeAsterisk, load_trace_env
from tests.integration.daemons import funded, gate_call, start_daemon, trace

ENV = load_trace_env(TRACES_DIR / "lab-23.4.1-basic" / "agi-answered_limit_not_reached.txt")


@pytest.fixture
async def fake_ami() -> AsyncIterator[FakeAmiServer]:
    server = await FakeAmiServer(secret="lab-secret").start()
    yield server
    await server.close()


async def running(ctx: BillingContext, fake_ami: FakeAmiServer) -> Daemon:
    settings = Settings(
        database={"url": str(ctx.uow.engine.url)}, agi={"port": 0}, web={"port": 0},
        ami={"port": fake_ami.port, "secret": "lab-secret", "reconnect_seconds": 0.05})
    ctx.config = settings
    daemon = Daemon(settings, ctx=ctx)
    await daemon.start()
    return daemon


class TestHealthAndMetrics:
    async def test_healthz_says_ok_while_ami_and_the_ledger_are_up_and_503_when_ami_is_lost(
        self, ctx: BillingContext, fake_ami: FakeAmiServer
    ) -> None:
        daemon = await running(ctx, fake_ami)
        try:
            await fake_ami.next_login()
            await daemon.events.reconciled.reached(1)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.web_port}") as web:
                ok = await web.get("/healthz")
                assert ok.status_code == 200
                assert ok.json() == {"status": "ok", "database": "ok", "schema": "ok",
                                     "ami": "connected"}
                await fake_ami.refuse()
                fake_ami.drop()
                assert daemon.follower is not None
                await daemon.follower.progress.lost.reached(1)  # it notices the drop itself
                lost = await web.get("/healthz")
                assert lost.status_code == 503
                assert lost.json()["ami"] == "disconnected"
        finally:
            await daemon.stop()

    async def test_metrics_count_decisions_by_verdict_and_reason(
        self, ctx: BillingContext, fake_ami: FakeAmiServer
    ) -> None:
        await set_extension(ctx, "100", ExtensionChanges(billing=True, locked=True))
        daemon = await running(ctx, fake_ami)
        try:
            assert daemon.gate is not None
            await FakeAsterisk(ENV).call(daemon.gate.port)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.web_port}") as web:
                text = (await web.get("/metrics")).text
        finally:
            await daemon.stop()
        assert 'coobill_authorizations_total{reason="locked",verdict="DENY"} 1.0' in text
        assert "coobill_gate_latency_seconds_count 1.0" in text
        assert "coobill_live_reservations 0.0" in text
        assert "coobill_ami_reconnects" in text


class TestSystemd:
    async def test_the_daemon_says_ready_then_stopping_on_the_notify_socket(
        self, ctx: BillingContext, fake_ami: FakeAmiServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        path = tmp_path / "notify"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(path))
        sock.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        daemon = await running(ctx, fake_ami)
        port = daemon.gate.port  # type: ignore[union-attr]
        await daemon.stop()
        said = []
        while True:
            try:
                said.append(sock.recv(100).decode())
            except BlockingIOError:
                break
        sock.close()
        assert [line for line in said if not line.startswith("STATUS=")] == [
            "READY=1", "STOPPING=1"]
        # its status first, so whoever waits for READY=1 finds the gate's port beside it
        assert said[0].startswith(f"STATUS=gate port {port}; AMI ")

    async def test_the_status_line_counts_what_the_daemon_did(
        self, ctx: BillingContext, fake_ami: FakeAmiServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """STATUS= (`systemctl status`) follows the daemon's events: here one reconcile after
        the login, then a settled call, each sent when it happens (at most every 0.2 s)."""
        path = tmp_path / "notify"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(path))
        sock.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        await funded(ctx)
        loop = asyncio.get_running_loop()

        async def status_until(count: str, at_least: int) -> str:
            """The first STATUS= whose `count` is at least that (updates are coalesced)."""
            async with asyncio.timeout(10):
                while True:
                    line = (await loop.sock_recv(sock, 200)).decode()
                    found = re.search(rf"{count} (\d+)", line)
                    if line.startswith("STATUS=") and found and int(found[1]) >= at_least:
                        return line

        daemon = await start_daemon(ctx, fake_ami)
        try:
            await status_until("reconciled", 1)
            assert (await gate_call(daemon.gate.port, "sip_answered"))[  # type: ignore[union-attr]
                "COOBILL_RESULT"] == "ALLOW"
            await fake_ami.send_events(event_frames(trace()))
            line = await status_until("settled", 1)
            assert "AMI connected" in line
        finally:
            await daemon.stop()
            sock.close()

    async def test_watchdog_heartbeats_are_sent_at_half_the_interval(
        self, ctx: BillingContext, fake_ami: FakeAmiServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        path = tmp_path / "notify"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(path))
        sock.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        monkeypatch.setenv("WATCHDOG_USEC", "100000")  # 0.1 s: heartbeats every 0.05 s
        daemon = await running(ctx, fake_ami)
        waiting = asyncio.create_task(daemon.wait())
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(10):
                said = []
                while sum(not line.startswith("STATUS=") for line in said) < 3:
                    said.append((await loop.sock_recv(sock, 200)).decode())
        finally:
            daemon.request_stop()
            await waiting
            await daemon.stop()
            sock.close()
        said = [line for line in said if not line.startswith("STATUS=")]
        assert said[:3] == ["READY=1", "WATCHDOG=1", "WATCHDOG=1"]


class TestReload:
    async def test_a_reload_applies_new_billing_policy_without_dropping_anything(
        self, ctx: BillingContext, fake_ami: FakeAmiServer, tmp_path: Path
    ) -> None:
        config = tmp_path / "coobill.toml"
        config.write_text('[billing]\nno_rate = "allow_free"\n')
        await set_extension(ctx, "100", ExtensionChanges(billing=True))
        await recharge(ctx, ["100"], "5")
        daemon = await running(ctx, fake_ami)
        daemon.config_path = str(config)
        daemon.settings = ctx.config
        try:
            assert daemon.gate is not None
            before = await FakeAsterisk(ENV).call(daemon.gate.port)
            config.write_text('[billing]\nno_rate = "deny"\n'
                              f'[database]\nurl = "{ctx.uow.engine.url}"\n'
                              f'[ami]\nport = {fake_ami.port}\nsecret = "lab-secret"\n'
                              'reconnect_seconds = 0.05\n[agi]\nport = 0\n[web]\nport = 0\n')
            await daemon.reload()
            after = await FakeAsterisk(ENV).call(daemon.gate.port)
            assert daemon.follower is not None
            assert daemon.follower.reconnects == 0
        finally:
            await daemon.stop()
        assert (before.variables["COOBILL_RESULT"], before.variables["COOBILL_REASON"]) == (
            "ALLOW", "no_rate")
        assert (after.variables["COOBILL_RESULT"], after.variables["COOBILL_REASON"]) == (
            "DENY",
            "no_rate",
        )

    async def test_a_reload_with_a_bad_file_keeps_the_running_configuration(
        self,
        ctx: BillingContext,
        fake_ami: FakeAmiServer,
        tmp_path: Path,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        config = tmp_path / "coobill.toml"
        config.write_text("[agi]\nport = 'not a port'\n")
        daemon = await running(ctx, fake_ami)
        daemon.config_path = str(config)
        before = daemon.settings
        try:
            with caplog.at_level(logging.ERROR, logger="coobill.daemon"):
                await daemon.reload()
        finally:
            await daemon.stop()
        assert daemon.settings is before
        assert any(
            "daemon.reload_refused" in r.getMessage() and "agi.port" in r.getMessage()
            for r in caplog.records
        )


class TestLogs:
    def test_a_key_value_line_becomes_json_fields(self) -> None:
        record = logging.LogRecord(
            "coobill.gate",
            logging.INFO,
            __file__,
            1,
            "gate.decision uniqueid=%s ext=%s verdict=%s reason=%s",
            ("1795357552.31", "100", "DENY", "no_funds"),
            None,
        )
        line = json.loads(JsonFormatter().format(record))
        assert line == {
            "level": "info",
            "logger": "coobill.gate",
            "event": "gate.decision",
            "uniqueid": "1795357552.31",
            "ext": "100",
            "verdict": "DENY",
            "reason": "no_funds",
        }

    def test_free_text_is_kept_whole(self) -> None:
        assert fields_of("Uvicorn running on http://x") == {
            "message": "Uvicorn running on http://x"
        }

    def test_the_configured_level_and_format_apply(self) -> None:
        configure_logging(LogConfig(level="WARNING", format="json"))
        root = logging.getLogger()
        try:
            assert root.level == logging.WARNING
            assert isinstance(root.handlers[0].formatter, JsonFormatter)
        finally:
            configure_logging(LogConfig())

    async def test_the_daemon_never_logs_the_ami_secret(
        self, fake_ami: FakeAmiServer, tmp_path: Path
    ) -> None:
        env = {
            **os.environ,
            "COOBILL_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'l.db'}",
            "COOBILL_AGI__PORT": "0",
            "COOBILL_WEB__ENABLED": "false",
            "COOBILL_AMI__PORT": str(fake_ami.port),
            "COOBILL_AMI__SECRET": "lab-secret",
            "COOBILL_LOG__LEVEL": "DEBUG",
        }
        migrate = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "coobill.cli.main",
            "migrate",
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
        )
        assert await migrate.wait() == 0
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "coobill.cli.main",
            "run",
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stderr is not None
        lines = []
        async with asyncio.timeout(20):
            while not any("settlement.reconciled" in ln for ln in lines):
                lines.append((await proc.stderr.readline()).decode())
            proc.terminate()
            rest, _ = await proc.communicate()
        assert await proc.wait() == 0
        assert "lab-secret" not in "".join(lines) + (rest or b"").decode()


class TestFirstWayIn:
    async def test_a_first_start_without_users_makes_an_admin_and_says_its_password_once(
        self, ctx: BillingContext, fake_ami: FakeAmiServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The daemon on a ledger with no portal user makes `admin` with a random password,
        logs it once with the login address, and that password logs in; a second start with
        a user present makes nobody."""
        with caplog.at_level(logging.WARNING, logger="coobill.daemon"):
            daemon = await running(ctx, fake_ami)
            try:
                said = [
                    fields_of(r.getMessage())
                    for r in caplog.records
                    if r.getMessage().startswith("portal.first_admin")
                ]
                assert len(said) == 1
                assert said[0]["user"] == "admin"
                assert said[0]["login"] == f"http://127.0.0.1:{daemon.web_port}/login"
                password = said[0]["password"]
                assert len(password) >= 12
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.web_port}") as web:
                    logged_in = await web.post(
                        "/api/login", json={"name": "admin", "password": password}
                    )
                    assert logged_in.status_code == 200
                    assert logged_in.json()["user"]["role"] == "admin"
            finally:
                await daemon.stop()
            caplog.clear()
            again = await running(ctx, fake_ami)
            await again.stop()
        assert not [r for r in caplog.records if "portal.first_admin" in r.getMessage()]
        from coobill.services.users import list_users

        assert [(u.name, u.role) for u in await list_users(ctx)] == [("admin", "admin")]
