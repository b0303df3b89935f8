"""The portal in a process of its own: niced, answering /healthz and /metrics for the daemon,
restarted on the same port when it dies, and gone when the daemon goes."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from coobill.config import Settings
from coobill.daemon import Daemon
from coobill.services.context import BillingContext


async def portal_daemon(ctx: BillingContext, **web: object) -> Daemon:
    settings = Settings(database={"url": str(ctx.uow.engine.url)}, agi={"enabled": False},
                        ami={"enabled": False}, web={"port": 0, **web})
    ctx.config = settings
    daemon = Daemon(settings, ctx=ctx)
    await daemon.start()
    return daemon


def nice_of(pid: int) -> int:
    # /proc/PID/stat field 19 is the nice value (proc(5)); the name may hold spaces.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[16])


class TestPortalProcess:
    async def test_the_portal_runs_niced_in_its_own_process_and_is_restarted_when_it_dies(
        self, ctx: BillingContext
    ) -> None:
        daemon = await portal_daemon(ctx, priority=7)
        try:
            portal = daemon.web
            assert portal is not None
            assert portal.process is not None
            first = portal.process
            assert first.pid != os.getpid()
            assert nice_of(first.pid) == nice_of(os.getpid()) + 7
            base = f"http://127.0.0.1:{daemon.web_port}"
            async with httpx.AsyncClient(base_url=base) as web:
                healthy = await web.get("/healthz")
                assert healthy.status_code == 200
                assert healthy.json() == {"status": "ok", "database": "ok", "schema": "ok",
                                          "ami": "disabled"}
                assert "coobill" in (await web.get("/metrics")).text
                os.kill(first.pid, signal.SIGKILL)
                await portal.until(lambda: portal.ready_count >= 2, timeout=30)
                assert portal.process is not first
                assert daemon.web_port == int(base.rsplit(":", 1)[1])
                assert (await web.get("/healthz")).status_code == 200
        finally:
            await daemon.stop()
        assert portal.process.returncode is not None  # stopped with the daemon

    async def test_the_portal_exits_when_its_link_to_the_daemon_closes(
        self, ctx: BillingContext
    ) -> None:
        """What happens when the daemon dies: the kernel closes its end of the link."""
        daemon = await portal_daemon(ctx)
        portal = daemon.web
        assert portal is not None
        assert portal.process is not None
        child = portal.process
        try:
            assert portal._link is not None
            portal._stopping.set()  # as a dead daemon would: no restart
            portal._link.transport.abort()
            assert await child.wait() == 0
        finally:
            await daemon.stop()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx must reach loopback directly, whatever proxy the environment names."""
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
