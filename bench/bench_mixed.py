"""Mixed load: authorizations, live calls and settlements together at 150 calls/s for a minute
(both are parameters), on SQLite, with latency percentiles.

The real daemon (gate and AMI follower; no portal) runs in a process of its own on a funded
SQLite ledger, following a fake Asterisk manager that this process serves on loopback. This
process plays the PBX: each call, started on a fixed schedule, is the recorded pjsip answered
call cloned with fresh uniqueids (as bench_settlement does) -
  1. its caller channel appears (Newchannel),
  2. the dialplan asks the gate over FastAGI (as bench_gate's client does; timed: gate latency),
  3. it dials and is answered (the recorded events up to the bridge),
  4. it talks for 1-3 s (uniform),
  5. it hangs up: the recorded tail (HangupRequest, Cdr, BridgeLeave, Hangup) is sent.
The daemon reports each settlement (debit committed) with its CLOCK_MONOTONIC time, so
hangup-to-debit is measured from the moment the tail was written to the AMI socket.
At 150 calls/s (what Asterisk on two cores sets up) with 1-3 s of talk about 300 calls are
live at any time.

The baseline (`--floor`) is the same load against a bare FastAGI responder (bench_gate's floor)
and an AMI follower that only notes each ended call: what the PBX side, loopback, panoramisk
and the call tracker cost before coobill decides or settles anything.

With `--portal` the daemon also serves its portal (in its process of its own, as shipped)
and, for the whole run, a bounded flood of visitors (bench/portal_flood.py, a process of its
own, niced: remote visitors' CPU is not the daemon's) logs in with wrong passwords and views
pages: the gate's p99 against the same run without the portal's load is the figure."""

from __future__ import annotations

import asyncio
import gc
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_settlement import call_template, clone

NUMBER = "9138000001"
SECRET = "bench-secret"


def env_block(uniqueid: str, ext: str, channel: str) -> bytes:
    lines = [
        "agi_network: yes", "agi_network_script: authorize",
        "agi_request: agi://127.0.0.1:4573/authorize", f"agi_channel: {channel}",
        "agi_language: en", "agi_type: PJSIP", f"agi_uniqueid: {uniqueid}", "agi_version: 23.4.1",
        f"agi_callerid: {ext}", f"agi_calleridname: Ext {ext}", "agi_callingpres: 0",
        "agi_callingani2: 0", "agi_callington: 0", "agi_callingtns: 0", f"agi_dnid: {NUMBER}",
        "agi_rdnis: unknown", "agi_context: sipphones", f"agi_extension: {NUMBER}",
        "agi_priority: 2", "agi_enhanced: 0.0", "agi_accountcode: ",
        "agi_threadid: 139628831086272", f"agi_arg_1: {ext}", f"agi_arg_2: {NUMBER}",
    ]
    return ("\n".join(lines) + "\n\n").encode()


async def authorize(port: int, uniqueid: str, ext: str, channel: str) -> tuple[float, str]:
    """One FastAGI conversation as Asterisk holds it: (seconds, COOBILL_RESULT)."""
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(env_block(uniqueid, ext, channel))
    result = ""
    while True:
        line = await reader.readline()
        if not line:
            break
        if line.startswith(b'SET VARIABLE COOBILL_RESULT "'):
            result = line.split(b'"')[1].decode()
        writer.write(b"200 result=0\n" if line.startswith(b"EXEC") else b"200 result=1\n")
    writer.close()
    return time.perf_counter() - start, result


# --- the daemon, in its own process -----------------------------------------------------------


PORTAL_USER, PORTAL_PASSWORD = "bench", "bench password"


async def prepare_ledger(path: Path) -> None:
    from coobill.bootstrap import bootstrap
    from coobill.config import Settings
    from coobill.services.balances import recharge
    from coobill.services.extensions import ExtensionChanges, set_extension
    from coobill.services.rate_fields import check_rate_fields
    from coobill.services.rates import add_rate
    from coobill.services.users import add_user
    from coobill.storage import schema

    ctx = bootstrap(Settings(database={"url": f"sqlite+aiosqlite:///{path}"}))
    await schema.upgrade(ctx.uow.engine)
    for ext in range(100, 200):
        await set_extension(ctx, str(ext), ExtensionChanges(billing=True))
    await recharge(ctx, [str(e) for e in range(100, 200)], "100000")
    await add_rate(ctx, check_rate_fields(prefix="9", number_length=0, initial_cost="0.1",
                                          initial_seconds=60, rate="0.05", period_seconds=60,
                                          extensions="*"))
    await add_user(ctx, PORTAL_USER, PORTAL_PASSWORD, "billing")
    await ctx.uow.dispose()


async def run_daemon(path: Path, ami_port: int, portal: bool = False) -> None:
    """Print the gate's port, then `S uniqueid monotonic` per settlement, until stdin closes."""
    import logging

    from coobill.config import Settings
    from coobill.daemon import Daemon

    logging.disable(logging.INFO)  # one line per decision and settlement; not measured
    settings = Settings(
        database={"url": f"sqlite+aiosqlite:///{path}"}, agi={"port": 0},
        web={"enabled": portal, "port": 0}, log={"level": "WARNING"},
        ami={"host": "127.0.0.1", "port": ami_port, "username": "coobill", "secret": SECRET,
             "cdr_events": "on", "reconnect_seconds": 0.2},
    )
    out = sys.stdout

    class Reporting(Daemon):
        def _settlement_done(self, settlements):  # type: ignore[no-untyped-def]
            at = time.monotonic()
            super()._settlement_done(settlements)
            for settlement in settlements:
                out.write(f"S {settlement.uniqueid} {at:.6f}\n")
            out.flush()

    daemon = Reporting(settings)
    await daemon.start()
    # Holds taken before the first reconciliation would be reconciled against a PBX that
    # did not list their channels yet (and flagged): the PBX starts calling once it is done.
    await daemon.events.reconciled.reached(1, timeout=30)
    assert daemon.gate is not None
    out.write(f"PORT {daemon.gate.port} {daemon.web_port or 0}\n")
    out.flush()
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await daemon.stop()


async def run_floor(ami_port: int) -> None:
    """The floor, in the daemon's place: a bare FastAGI responder sending the gate's commands
    with no logic (bench_gate's floor) and an AMI follower that only notes each ended call."""
    from bench.gate_servers import COMMANDS
    from coobill.ami.follower import AmiFollower, FollowerOptions

    out = sys.stdout

    async def conversation(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\n\n")
        for command in COMMANDS:
            writer.write(command.encode() + b"\n")
            await writer.drain()
            await reader.readline()
        writer.close()

    async def ended(call) -> None:  # type: ignore[no-untyped-def]
        out.write(f"S {call.uniqueid} {time.monotonic():.6f}\n")
        out.flush()

    async def reconciled(_live: set[str]) -> None:
        return None

    gate = await asyncio.start_server(conversation, "127.0.0.1", 0)
    options = FollowerOptions("127.0.0.1", ami_port, "coobill", SECRET, cdr_events="on")
    follower = AmiFollower(options, on_call_ended=ended, on_reconciled=reconciled)
    await follower.start()
    out.write(f"PORT {gate.sockets[0].getsockname()[1]}\n")
    out.flush()
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await follower.stop()
    gate.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the PBX, in this process -----------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * p) - 1)]


async def run(duration: float, rate: float, floor: bool = False,
              portal: bool = False) -> dict[str, float]:
    from tests.fakes.ami_server import EndpointBook, FakeAmiServer

    total = int(duration * rate)
    template = call_template()
    calls = [clone(template, n) for n in range(total)]  # built before the clock starts
    first_t = min(f.t for f in template)
    # Those ~250,000 frames would make this process's full garbage collections take 100 ms
    # and more, mid-run, and its stalls would count as the daemon's latency: keep them out.
    gc.collect()
    gc.freeze()

    tmp = tempfile.mkdtemp()
    path = Path(tmp) / "mixed.db"
    if not floor:
        await prepare_ledger(path)
    server = await FakeAmiServer(secret=SECRET, endpoints=EndpointBook.from_pjsip_lab()).start()
    role = "--floor" if floor else "--daemon-portal" if portal else "--daemon"
    daemon = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.bench_mixed", role, str(path),
        str(server.port), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert daemon.stdout is not None
    assert daemon.stdin is not None
    ports = (await daemon.stdout.readline()).split()
    port = int(ports[1])
    await server.next_login(timeout=30)
    flood = None
    if portal:
        flood = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.portal_flood", ports[2].decode(), PORTAL_USER,
            PORTAL_PASSWORD, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            preexec_fn=lambda: os.nice(19))
        assert flood.stdout is not None
        said = await flood.stdout.readline()
        assert said == b"ready\n", said

    settled: dict[str, float] = {}
    all_settled = asyncio.Event()

    async def read_settlements() -> None:
        assert daemon.stdout is not None
        async for line in daemon.stdout:
            _, uid, at = line.decode().split()
            settled[uid] = float(at)
            if len(settled) >= total:
                all_settled.set()

    reader = asyncio.create_task(read_settlements())
    rng = random.Random(17)
    talk = [rng.uniform(1.0, 3.0) for _ in range(total)]
    gate_s: list[float] = []
    hangups: dict[str, float] = {}
    verdicts: dict[str, int] = {}
    lateness: list[float] = []
    errors: list[str] = []
    live = 0
    most_live = 0

    async def one_call(n: int) -> None:
        nonlocal live, most_live
        uid, ext, frames = calls[n]
        newchannel = [f for f in frames if f.t == first_t and f.event == "Newchannel"][:1]
        up = [f for f in frames if f.t < 5 and f not in newchannel]
        tail = [f for f in frames if f.t >= 5]
        channel = newchannel[0].get("Channel")
        live += 1
        most_live = max(most_live, live)
        try:
            await server.send_events(newchannel)
            seconds, verdict = await authorize(port, uid, ext, channel)
            gate_s.append(seconds)
            verdicts[verdict] = verdicts.get(verdict, 0) + 1
            await server.send_events(up)
            await asyncio.sleep(talk[n])
            hangups[uid] = time.monotonic()
            await server.send_events(tail)
        except Exception as exc:  # noqa: BLE001 - counted and reported, never silent
            errors.append(repr(exc))
        finally:
            live -= 1

    cpu_before = cpu_seconds(daemon.pid)
    loop = asyncio.get_running_loop()
    tasks = []
    start = loop.time()
    for n in range(total):
        due = start + n / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        lateness.append(loop.time() - due)
        tasks.append(asyncio.create_task(one_call(n)))
    offered_s = loop.time() - start
    await asyncio.gather(*tasks)
    try:
        await asyncio.wait_for(all_settled.wait(), 60)
    except TimeoutError:
        errors.append(f"only {len(settled)} of {total} calls settled within 60 s")
    elapsed = loop.time() - start
    cpu_used = cpu_seconds(daemon.pid) - cpu_before
    portal_requests: dict[str, float] = {}
    if flood is not None:
        assert flood.stdin is not None
        flood.stdin.close()
        answer = (await flood.communicate())[0].decode().split()
        portal_requests = {"portal_requests": float(answer[0]),
                           "portal_requests_per_s": float(answer[0]) / float(answer[1]),
                           "portal_errors": float(answer[2])}

    daemon.stdin.close()
    await daemon.wait()
    reader.cancel()
    await server.close()
    shutil.rmtree(tmp, ignore_errors=True)
    gc.unfreeze()

    debit_ms = [(settled[u] - t) * 1000 for u, t in hangups.items() if u in settled]
    gate_ms = [s * 1000 for s in gate_s]
    return {
        "duration_s": duration,
        "calls": float(total),
        "offered_calls_per_s": total / offered_s,
        "schedule_lateness_p99_ms": percentile(lateness, 0.99) * 1000,
        "most_live_calls": float(most_live),
        "allowed": float(verdicts.get("ALLOW", 0)),
        "settled": float(len(settled)),
        "errors": float(len(errors)),
        "gate_p50_ms": statistics.median(gate_ms),
        "gate_p99_ms": percentile(gate_ms, 0.99),
        "gate_max_ms": max(gate_ms),
        "hangup_to_debit_p50_ms": statistics.median(debit_ms),
        "hangup_to_debit_p99_ms": percentile(debit_ms, 0.99),
        "hangup_to_debit_max_ms": max(debit_ms),
        "daemon_cpu_percent": 100 * cpu_used / elapsed,
        **portal_requests,
        **({"first_error": errors[0]} if errors else {}),  # type: ignore[dict-item]
    }


def main(duration: float = 60.0, rate: float = 150.0, floor: bool = False,
         portal: bool = False) -> dict[str, float]:
    return asyncio.run(run(duration, rate, floor, portal))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] in ("--daemon", "--daemon-portal"):
        asyncio.run(run_daemon(Path(sys.argv[2]), int(sys.argv[3]),
                               portal=sys.argv[1] == "--daemon-portal"))
    elif len(sys.argv) == 4 and sys.argv[1] == "--floor":
        asyncio.run(run_floor(int(sys.argv[3])))
    else:
        import argparse

        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
        parser.add_argument("--rate", type=float, default=150.0, help="new calls per second")
        parser.add_argument("--floor", action="store_true",
                            help="bare FastAGI responder and AMI follower instead of the daemon")
        parser.add_argument("--portal", action="store_true",
                            help="the daemon's portal too, under a flood of logins and pages")
        args = parser.parse_args()
        for key, value in main(args.duration, args.rate, args.floor, args.portal).items():
            print(f"{key:26} {value:,.2f}" if isinstance(value, float) else f"{key:26} {value}")
