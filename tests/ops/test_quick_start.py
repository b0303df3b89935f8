"""The README's Quick start, followed verbatim by a newcomer in a fresh copy of the checkout:
`make run` sets everything up and starts the daemon, its first start says how to log in, and
the CLI run from the same folder works on the same ledger as the portal."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.traces import REPOSITORY

# `make run` installs the packages into a new venv: minutes, not seconds.
pytestmark = [pytest.mark.timeout(900), pytest.mark.clone]


def _copy_checkout(target: Path) -> None:
    """What a clone holds: the tracked files (as they are now) and new ones not ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPOSITORY, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPOSITORY / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Checkout:
    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder, self.env = folder, env

    def coobill(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """`.venv/bin/coobill ...` as the README says, run from the checkout (or `cwd`)."""
        return subprocess.run([str(self.folder / ".venv" / "bin" / "coobill"), *args],
                              cwd=cwd or self.folder, env=self.env, capture_output=True,
                              text=True, timeout=120, check=False)


@pytest.fixture
async def started(tmp_path: Path) -> AsyncIterator[tuple[Checkout, dict[str, str]]]:
    """`make run` in a fresh copy; yields once the daemon is ready, with what it said."""
    folder = tmp_path / "coobill"
    _copy_checkout(folder)
    # Only what the README names: the ports, so that this run takes no port another uses.
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("COOBILL_")}
    web_port = _free_port()
    env.update(COOBILL_WEB__PORT=str(web_port), COOBILL_AGI__PORT=str(_free_port()))
    make = await asyncio.create_subprocess_exec(
        "make", "run", cwd=folder, env=env, start_new_session=True,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert make.stdout is not None
    said: dict[str, str] = {"web": f"http://127.0.0.1:{web_port}"}
    output: list[str] = []
    drain: asyncio.Task[bytes] | None = None
    try:
        async with asyncio.timeout(800):
            while "ready" not in said:
                line = (await make.stdout.readline()).decode()
                if not line:
                    raise AssertionError("make run ended:\n" + "".join(output[-40:]))
                output.append(line)
                if "portal.first_admin" in line:
                    said.update(re.findall(r"(\w+)=(\S+)", line))
                if "daemon.ready" in line:
                    said["ready"] = "yes"
        drain = asyncio.create_task(make.stdout.read())  # the daemon keeps logging
        yield Checkout(folder, env), said
    finally:
        os.killpg(make.pid, signal.SIGTERM)
        async with asyncio.timeout(60):
            await make.wait()
            if drain is not None:
                await drain


async def _log_in(web: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
    form = (await web.get("/login")).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token is not None
    return await web.post("/login", data={"name": name, "password": password,
                                          "csrf_token": token.group(1)})


async def test_make_run_then_the_first_admin_logs_in_and_the_cli_shares_the_ledger(
    started: tuple[Checkout, dict[str, str]],
) -> None:
    checkout, said = started
    assert said["user"] == "admin"
    assert said["login"] == said["web"] + "/login"
    async with httpx.AsyncClient(base_url=said["web"]) as web:
        logged_in = await _log_in(web, "admin", said["password"])
        assert logged_in.status_code == 303
        assert logged_in.headers["location"] == "/extensions"

        # The CLI from the same folder, with no flag or variable, writes to the daemon's ledger.
        made = checkout.coobill("extension", "set", "100", "--name", "Alice", "--billing")
        assert made.returncode == 0, made.stderr
        listed = (await web.get("/api/extensions")).json()
        assert [e["extension"] for e in listed["items"]] == ["100"]
        added = checkout.coobill("user", "add", "bill", "--role", "billing",
                                 "--password", "a-long-password")
        assert added.returncode == 0, added.stderr

    async with httpx.AsyncClient(base_url=said["web"]) as other:
        assert (await _log_in(other, "bill", "a-long-password")).status_code == 303
    # ... and from a folder inside the checkout too: the ledger is not found by the folder.
    shown = checkout.coobill("extension", "list", "--json", cwd=checkout.folder / "docs")
    assert shown.returncode == 0, shown.stderr
    assert '"extension": "100"' in shown.stdout
    assert (checkout.folder / "var" / "coobill.db").is_file()
