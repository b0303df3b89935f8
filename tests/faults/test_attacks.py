"""Issue 14's attacks, each bounded in time, against a running daemon on loopback (its gate in
this process, its portal in a process of its own): while 50 bad logins run at once, 1,000 slow
connections dribble headers at the portal, or 2,000 connections sit idle on the gate's port,
the gate gives every valid call the same verdict as without the attack, and its p99 stays
within 2 ms of its p99 without it (the issue's bound, for each attack), measured in turns
with and without the attack; the portal's memory stays bounded; every bad input gets a 4xx
with a reason — never a 500 — and nothing logs a traceback.

What the p99 measures on a shared machine is mostly the machine: with other work on both of
two cores, the gate's p99 without any attack went from 2.5 ms to 10-95 ms and back within
minutes. Measured per gate request in alternating turns, the gate's own CPU (~1.4 ms with its
fake Asterisk) did not change under any of the three attacks, nor, with the rest of the
machine held off, did its wait for a CPU (its threads' run delay: 1.07 / 1.14 ms without /
with the login flood, 0.83 / 0.96 slow connections, 1.02 / 0.99 idle ones); with the machine
saturated that wait ran 5-27 ms a request, from turn to turn, either way."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from coobill.bootstrap import bootstrap
from coobill.config import Settings
from coobill.daemon import Daemon
from coobill.services.context import BillingContext
from coobill.services.ledger_seal import open_ledger
from coobill.services.users import add_user
from tests.faults.calls import Call, billed
from tests.web.test_input_hardening import BAD_INPUTS

ROOT = Path(__file__).parents[2]
PROBES = 200  # gate requests per turn (its p99: the second slowest); under attack, of 600
ROUNDS = 3
# The bound: the gate's p99 under each attack within 2 ms of its p99 without, for all
# three. With the portal and the daemon on CPUs of their own (daemon/portal.py, CpuSplit), on
# the quiet two-core Intel machine of 2026-12-07, eleven runs gave over the worst turn without
# the attack at most +0.3 ms for the login flood (it was +1.4 to +2.1 ms in 3 of 7 runs with
# the daemon on either CPU), +0.1 ms for slow portal connections and +0.3 ms for idle gate
# connections (docs/benchmarks.md).
LOGINS_MARGIN_SECONDS = 0.002
PORTAL_CONNECTIONS_MARGIN_SECONDS = 0.002
GATE_CONNECTIONS_MARGIN_SECONDS = 0.002
ALLOWED = {"COOBILL_RESULT": "ALLOW", "COOBILL_REASON": "ok", "COOBILL_LIMIT": "600",
           "COOBILL_DIAL_OPTIONS": "L(600000)"}
PASSWORD = "correct horse battery"


@pytest.fixture
async def ctx(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[BillingContext]:
    """The appliance's own ledger, SQLite: where the portal and the gate share a write lock
    (PostgreSQL's row locks make the isolation easier, not harder)."""
    shutil.copy(sqlite_template, tmp_path / "ledger.db")
    context = bootstrap(Settings(database={"url": f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"}))
    await open_ledger(context)
    try:
        yield context
    finally:
        await context.uow.dispose()


@pytest.fixture
async def daemon(ctx: BillingContext) -> AsyncIterator[Daemon]:
    """The daemon with its gate and its portal, AMI off: the gate's holds simply stay."""
    await billed(ctx, {"100": "100000"})
    await add_user(ctx, "bill", PASSWORD, "admin")
    settings = Settings(database={"url": str(ctx.uow.engine.url)}, agi={"port": 0},
                        ami={"enabled": False}, web={"port": 0},
                        billing={"max_call_seconds": 600})
    ctx.config = settings
    running = Daemon(settings, ctx=ctx)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


_seq = itertools.count(1000)


async def gate_latencies(daemon: Daemon, probes: int = PROBES) -> list[float]:
    """How long each of `probes` valid gate requests, one after the other, took; each must
    be ALLOWed exactly as without any attack."""
    assert daemon.gate is not None
    loop = asyncio.get_running_loop()
    took: list[float] = []
    for _ in range(probes):
        call = Call(next(_seq), "100", 1)
        started = loop.time()
        verdict = await call.ask_gate(daemon.gate.port)
        took.append(loop.time() - started)
        assert verdict == ALLOWED
    return took


def p99(took: list[float]) -> float:
    return sorted(took)[int(len(took) * 0.99) - 1]


class Attacker:
    """The attack `kind` from a process of its own, at idle priority (an attacker's CPU is its
    own, not the daemon's: _attacker_priority), turned on and off by the test."""

    def __init__(self, kind: str, process: asyncio.subprocess.Process) -> None:
        self.kind = kind
        assert process.stdin is not None
        assert process.stdout is not None
        self._process, self._stdin, self._stdout = process, process.stdin, process.stdout
        self.statuses: list[int] = []  # the HTTP statuses it got, once it has exited

    async def _say(self, command: bytes, answer: bytes) -> None:
        self._stdin.write(command)
        await self._stdin.drain()
        said = await asyncio.wait_for(self._stdout.readline(), 60)
        assert said == answer, said

    async def on(self) -> None:
        """Returns once the attack is under way."""
        await self._say(b"on\n", b"ready\n")

    async def off(self) -> None:
        """Returns once the attacker has closed its every connection."""
        await self._say(b"off\n", b"stopped\n")

    async def end(self) -> None:
        self._stdin.close()
        out, _ = await asyncio.wait_for(self._process.communicate(), 60)
        assert self._process.returncode == 0
        self.statuses.extend(json.loads(out.decode().strip().splitlines()[-1]))


def _attacker_priority() -> None:
    """The attacker runs under SCHED_IDLE (sched(7)): a visitor's client runs on their own
    machine, not the PBX's; here it shares the two cores with the daemon, and at nice 19 its
    own request loop still took a slice of a CPU from the gate when the gate woke (the login
    flood's p99 +2.6 to +3.7 ms in 2 of 3 quiet runs; under SCHED_IDLE within 2 ms in 3 of 3)."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux
        os.nice(19)


@contextlib.asynccontextmanager
async def attacker(kind: str, port: int, count: int) -> AsyncIterator[Attacker]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.faults.attacker", kind, "127.0.0.1", str(port), str(count),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        cwd=ROOT, preexec_fn=_attacker_priority)
    assert process.stdin is not None
    assert process.stdout is not None
    attack = Attacker(kind, process)
    try:
        yield attack
    finally:
        await attack.end()


@contextlib.asynccontextmanager
async def attacking(kind: str, port: int, count: int) -> AsyncIterator[list[int]]:
    """The attack under way, once; yields the statuses it got, filled in once it stopped."""
    async with attacker(kind, port, count) as attack:
        await attack.on()
        yield attack.statuses


def waited_for_cpu() -> float:
    """Seconds this process's threads have waited for a CPU (schedstat, Linux; else 0)."""
    total = 0
    with contextlib.suppress(OSError):
        for thread in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError):  # a thread gone meanwhile
                total += int(Path(f"/proc/self/task/{thread}/schedstat").read_text().split()[1])
    return total / 1e9


async def with_and_without(daemon: Daemon, attack: Attacker,
                           *, settled: Callable[[], bool] = lambda: True
                           ) -> tuple[float, float, str]:
    """(the gate's p99 without the attack, with it, what was measured), measured in turns -
    without, with, ..., without - so that what else the machine runs meanwhile weighs on both
    alike. The p99 with the attack is that of every turn with it together; the p99 without is
    that of the worst turn without it: how far apart turns without any attack land is what
    this run can tell apart at all (on a quiet machine within about a millisecond; with other
    work on both cores, 10 to 85 ms). `settled` says when the daemon is done with what
    the attack left behind (the next turn without starts then)."""
    without: list[list[float]] = []
    under: list[float] = []
    waited = {"without": 0.0, "with": 0.0}

    async def turn(name: str) -> list[float]:
        before = waited_for_cpu()
        took = await gate_latencies(daemon)
        waited[name] += waited_for_cpu() - before
        return took

    for _ in range(ROUNDS):
        without.append(await turn("without"))
        await attack.on()
        under += await turn("with")
        await attack.off()
        await wait_until(settled)
    without.append(await turn("without"))
    each = {"without": 1000 * waited["without"] / (len(without) * PROBES),
            "with": 1000 * waited["with"] / len(under)}
    turns = ", ".join(f"{p99(took) * 1000:.2f}" for took in without)
    measured = (f"{attack.kind}: gate p99 {p99(under) * 1000:.2f} ms with the attack, {turns} ms "
                f"in the turns without; waited for a CPU {each['with']:.2f} / "
                f"{each['without']:.2f} ms a request")
    print(measured)  # shown with -s
    return max(p99(took) for took in without), p99(under), measured


async def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - the gate's count of connections has no event
            await asyncio.sleep(0.01)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def portal_url(daemon: Daemon) -> str:
    return f"http://127.0.0.1:{daemon.web_port}"


class TestTheGateUnderAttack:
    async def test_fifty_concurrent_bad_logins(self, daemon: Daemon) -> None:
        assert daemon.web_port is not None
        async with attacker("logins", daemon.web_port, 50) as attack:
            without, under, measured = await with_and_without(daemon, attack)
        assert attack.statuses
        assert set(attack.statuses) <= {401, 429, 503}, set(attack.statuses)
        assert under <= without + LOGINS_MARGIN_SECONDS, measured

    async def test_a_thousand_slow_portal_connections(self, daemon: Daemon) -> None:
        assert daemon.web_port is not None
        async with attacker("slow", daemon.web_port, 1000) as attack:
            without, under, measured = await with_and_without(daemon, attack)
        assert under <= without + PORTAL_CONNECTIONS_MARGIN_SECONDS, measured
        # Past web.max_connections the portal closed the newcomers; it serves again once the
        # attack is gone (or, kept up, as its header timeout frees the places).
        async with httpx.AsyncClient(base_url=portal_url(daemon), timeout=30) as web:
            assert (await web.get("/login")).status_code == 200

    async def test_two_thousand_idle_gate_connections(self, daemon: Daemon) -> None:
        gate = daemon.gate
        assert gate is not None
        async with attacker("idle", gate.port, 2000) as attack:
            # the next turn without the attack starts once the gate has closed its side of
            # every connection the attacker left
            without, under, measured = await with_and_without(
                daemon, attack, settled=lambda: gate.connections == 0)
        assert under <= without + GATE_CONNECTIONS_MARGIN_SECONDS, measured


class TestThePortalUnderAttack:
    async def test_the_portal_and_the_daemon_run_on_cpus_of_their_own(
        self, ctx: BillingContext
    ) -> None:
        """Whatever a visitor makes it do, the portal can take one CPU, never the gate's
        (daemon/portal.py, CpuSplit): the portal's process on the last CPU, every thread of
        the daemon on the others - until the daemon stops."""
        cpus = os.sched_getaffinity(0)
        settings = Settings(database={"url": str(ctx.uow.engine.url)}, agi={"port": 0},
                            ami={"enabled": False}, web={"port": 0})
        running = Daemon(settings, ctx=ctx)
        await running.start()
        try:
            assert running.web is not None
            assert running.web.process is not None
            portal = running.web.process.pid
            threads = [int(t) for t in os.listdir(f"/proc/{portal}/task")]
            assert len(threads) > 1  # the portal's own threads, started after it was placed
            ours = {int(t): os.sched_getaffinity(int(t)) for t in os.listdir("/proc/self/task")}
            if len(cpus) > 1:
                assert {t: os.sched_getaffinity(t) for t in threads} == {
                    t: {max(cpus)} for t in threads}
                assert ours == {t: cpus - {max(cpus)} for t in ours}
            else:
                assert os.sched_getaffinity(portal) == cpus
        finally:
            await running.stop()
        after = {int(t): os.sched_getaffinity(int(t)) for t in os.listdir("/proc/self/task")}
        assert after == dict.fromkeys(after, cpus)

    def test_two_daemons_in_one_process_give_the_cpus_back_when_the_last_stops(self) -> None:
        """Tests run daemons side by side in one process: one stopping leaves the other's
        threads off the portal's CPU; the last gives every CPU back."""
        from coobill.daemon.portal import CpuSplit

        cpus = os.sched_getaffinity(0)
        first, second = CpuSplit(), CpuSplit()
        assert first.cpus == second.cpus == cpus
        first.keep_daemon_off()
        second.keep_daemon_off()
        first.give_back()
        assert os.sched_getaffinity(0) == (cpus - {max(cpus)} if len(cpus) > 1 else cpus)
        second.give_back()
        assert os.sched_getaffinity(0) == cpus

    async def test_logins_with_huge_distinct_names_leave_its_memory_bounded(
        self, daemon: Daemon
    ) -> None:
        assert daemon.web is not None
        assert daemon.web.process is not None
        pid = daemon.web.process.pid
        before = rss_kib(pid)
        async with httpx.AsyncClient(base_url=portal_url(daemon), timeout=30) as web:
            for i in range(30):  # 10 MB each: refused (413, and closed) before it is all read
                try:
                    reply = await web.post("/api/login", content=b'{"name": "' + str(i).encode()
                                           + b"x" * 10_000_000 + b'", "password": "p"}',
                                           headers={"Content-Type": "application/json"})
                except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError):
                    continue  # the portal hung up on the rest of the body
                assert reply.status_code == 413
        assert daemon.web_port is not None
        async with attacking("logins", daemon.web_port, 20) as statuses:
            pass  # ready once each of the 20 has had an answer
        assert statuses
        assert 500 not in statuses
        assert rss_kib(pid) - before < 64 * 1024  # KiB: no name is kept, nor any body

    async def test_every_bad_input_gets_a_reason_never_a_500_or_a_traceback(
        self, daemon: Daemon, capfd: pytest.CaptureFixture[str]
    ) -> None:
        async with httpx.AsyncClient(base_url=portal_url(daemon), timeout=30) as web:
            login = await web.post("/api/login", json={"name": "bill", "password": PASSWORD})
            assert login.status_code == 200
            csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
            for method, path, body, statuses, reason in BAD_INPUTS:
                if path == "/api/login":
                    reply = await web.post(path, json=body)
                else:
                    reply = await web.request(method, path, json=body, headers=csrf)
                assert reply.status_code in statuses, (method, path, reply.status_code)
                assert reason in reply.text, (method, path, reply.text[:200])
            # A forged X-Forwarded-For does not reset the throttle: it counts the peer.
            codes = [(await web.post("/api/login", json={"name": "bill", "password": "nope"},
                                     headers={"X-Forwarded-For": f"10.0.0.{i}"})).status_code
                     for i in range(30)]
            assert 429 in codes
            # Logged out, the old cookie is worth nothing.
            kept = httpx.Cookies(web.cookies)
            assert (await web.post("/api/logout", headers=csrf)).status_code == 204
        async with httpx.AsyncClient(base_url=portal_url(daemon), cookies=kept) as replay:
            assert (await replay.get("/api/me")).status_code == 401
        output = capfd.readouterr()
        assert "Traceback" not in output.out + output.err
