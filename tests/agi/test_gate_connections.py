"""The gate's connections are bounded (issue 14, finding 5): a cap, an environment timeout,
and fault and accept-error lines at a bounded rate."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import resource
import time
from typing import Any

import pytest

from coobill.agi.limits import RateLimiter, rate_limited_exception_handler
from tests.agi.conftest import StartGate, messages
from tests.agi.test_gate_conversation import env_of
from tests.fakes.asterisk_agi import FakeAsterisk
from tests.fakes.authorizer import ScriptedAuthorizer

IDLE = 2000
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@pytest.fixture
def many_descriptors() -> None:
    """Room for the idle connections' both ends in this one process (the hard limit of a
    machine like CI's, 20000, has it; one below 2 * IDLE + 512 fails here, saying so)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2 * IDLE + 512
    if soft < wanted:
        assert hard == resource.RLIM_INFINITY or hard >= wanted, \
            f"RLIMIT_NOFILE hard limit {hard} is too low for {IDLE} connections"
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


async def open_idle(port: int, count: int) -> list[tuple[float, Connection]]:
    opened = []
    for _ in range(count):
        connection = await asyncio.open_connection("127.0.0.1", port)
        opened.append((time.monotonic(), connection))
    return opened


async def closed_at(connection: Connection) -> float:
    """When the gate closed it (EOF or reset): the client sends nothing, ever."""
    reader, _ = connection
    with contextlib.suppress(ConnectionResetError):
        assert await reader.read() == b""
    return time.monotonic()


def close_all(idle: list[tuple[float, Connection]]) -> None:
    for _, (_, writer) in idle:
        writer.transport.abort()


@pytest.mark.usefixtures("many_descriptors")
async def test_idle_connections_neither_delay_a_call_nor_outlive_the_environment_timeout(
    start_gate: StartGate,
) -> None:
    timeout = 1.0
    gate = await start_gate(max_connections=2 * IDLE, environment_timeout_seconds=timeout,
                            deadline_seconds=10.0)
    idle = await open_idle(gate.port, IDLE)
    try:
        asked = time.monotonic()
        seen = await asyncio.wait_for(FakeAsterisk(env_of()).call(gate.port), timeout)
        answered = time.monotonic() - asked
        assert seen.variables["COOBILL_RESULT"] == "ALLOW"
        assert answered < timeout / 2, f"a call behind {IDLE} idle connections took {answered}s"
        async with asyncio.timeout(timeout + 10.0):
            closed = await asyncio.gather(*(closed_at(c) for _, c in idle))
    finally:
        close_all(idle)
    lived = [end - start for (start, _), end in zip(idle, closed, strict=True)]
    # closed by the environment timeout: not before it (less the open's own round trip), and
    # long before the 10 s deadline
    assert min(lived) >= timeout * 0.9, f"an idle connection closed after {min(lived)}s"
    assert max(lived) < timeout + 4.0, f"an idle connection lived {max(lived)}s"


async def test_past_the_cap_the_oldest_silent_connection_gives_its_place_up(
    start_gate: StartGate, gate_log: pytest.LogCaptureFixture,
) -> None:
    cap, flood = 20, 100
    gate = await start_gate(max_connections=cap, environment_timeout_seconds=30.0,
                            deadline_seconds=60.0)
    idle = await open_idle(gate.port, flood)
    try:
        seen = await asyncio.wait_for(FakeAsterisk(env_of()).call(gate.port), 5.0)
        assert seen.variables["COOBILL_RESULT"] == "ALLOW"
        # the environment timeout is 30 s: closing these within 5 s is the cap's doing
        async with asyncio.timeout(5.0):
            await asyncio.gather(*(closed_at(c) for _, c in idle[: flood - cap]))
        assert gate.connections <= cap
        assert gate.evictions >= flood - cap
    finally:
        close_all(idle)
    evicted = [m for m in messages(gate_log, "gate.fault") if "fault=evicted" in m]
    assert len(evicted) == 1, "one line for the lot, not one per connection"


async def test_with_every_place_in_a_live_conversation_a_new_connection_is_closed_at_once(
    start_gate: StartGate,
) -> None:
    cap = 3
    release = asyncio.Event()
    authorizer = ScriptedAuthorizer(hold=release)
    gate = await start_gate(authorizer, max_connections=cap)
    live = [asyncio.create_task(FakeAsterisk(env_of(agi_uniqueid=f"1795357552.{n}"))
                                .call(gate.port)) for n in range(cap)]
    async with asyncio.timeout(5.0):
        while len(authorizer.calls) < cap:
            authorizer.entered.clear()
            await authorizer.entered.wait()
        refused = await FakeAsterisk(env_of(agi_uniqueid="1795357552.99")).call(gate.port)
        release.set()
        served = await asyncio.gather(*live)
    assert refused.commands == []
    assert refused.variables == {}
    assert gate.refused == 1
    assert [s.variables["COOBILL_RESULT"] for s in served] == ["ALLOW"] * cap


class TestRateLimits:
    def test_one_event_of_a_kind_per_interval_then_the_count_held_back(self) -> None:
        now = [0.0]
        limiter = RateLimiter(10.0, clock=lambda: now[0])
        assert limiter.admit("no_request") == 0
        assert [limiter.admit("no_request") for _ in range(500)] == [None] * 500
        assert limiter.admit("evicted") == 0  # another kind has its own allowance
        now[0] = 10.0
        assert limiter.admit("no_request") == 500
        assert limiter.admit("no_request") is None

    def test_accept_errors_reach_the_loops_handler_once_per_interval_with_a_count(self) -> None:
        now = [0.0]
        handle = rate_limited_exception_handler(10.0, clock=lambda: now[0])
        reported: list[dict[str, Any]] = []

        class Loop:
            def default_exception_handler(self, context: dict[str, Any]) -> None:
                reported.append(context)

        loop: Any = Loop()
        emfile = {"message": "socket.accept() out of system resource",
                  "exception": OSError(errno.EMFILE, "Too many open files")}
        for second in range(80):  # asyncio retries every second, per listening socket
            now[0] = float(second)
            for _ in range(3):
                handle(loop, emfile)
        assert len(reported) == 8
        assert reported[0]["message"] == "socket.accept() out of system resource"
        assert reported[1]["message"].startswith(
            "socket.accept() out of system resource (suppressed=29 ")
        assert reported[1]["exception"] is emfile["exception"]
        handle(loop, {"message": "Task exception was never retrieved",
                      "exception": ValueError("x")})
        assert len(reported) == 9
