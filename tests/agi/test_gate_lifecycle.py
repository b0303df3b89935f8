"""Starting and stopping the gate: a bound port, and a close that lets calls in flight finish."""

from __future__ import annotations

import asyncio

import pytest

from coobill.agi.server import GateOptions, GateServer
from tests.agi.conftest import StartGate
from tests.agi.test_gate_conversation import BOUND, call, env_of
from tests.fakes.asterisk_agi import FakeAsterisk
from tests.fakes.authorizer import ScriptedAuthorizer

pytestmark = pytest.mark.usefixtures("traces_available")


async def test_port_zero_binds_a_free_port_and_reports_it(start_gate: StartGate) -> None:
    gate = await start_gate()
    assert gate.port > 0
    seen = await call(gate.port, FakeAsterisk(env_of()))
    assert seen.variables["COOBILL_RESULT"] == "ALLOW"


def test_the_default_options_are_the_documented_ones() -> None:
    assert GateOptions() == GateOptions(
        host="127.0.0.1", port=4573, ring_allowance_seconds=60, deadline_seconds=5.0,
        max_env_bytes=65536, on_error="deny",
    )


def test_an_unknown_error_policy_is_refused() -> None:
    with pytest.raises(ValueError):
        GateOptions(on_error="maybe")  # type: ignore[arg-type]


async def test_close_lets_a_call_in_flight_finish_and_then_refuses_new_ones(
    start_gate: StartGate,
) -> None:
    release = asyncio.Event()
    authorizer = ScriptedAuthorizer(hold=release)
    gate = await start_gate(authorizer)
    port = gate.port
    in_flight = asyncio.create_task(FakeAsterisk(env_of()).call(port))
    await asyncio.wait_for(authorizer.entered.wait(), BOUND)

    closing = asyncio.create_task(gate.close(drain_timeout=BOUND))
    # Callbacks run in order: close() has stopped the listener before the ledger answers.
    asyncio.get_running_loop().call_soon(release.set)
    seen = await asyncio.wait_for(in_flight, BOUND)
    await asyncio.wait_for(closing, BOUND)

    assert seen.variables["COOBILL_RESULT"] == "ALLOW"
    assert not authorizer.cancelled
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_close_cancels_a_call_still_in_flight_after_the_drain_timeout(
    start_gate: StartGate,
) -> None:
    never = asyncio.Event()
    authorizer = ScriptedAuthorizer(hold=never)
    gate = await start_gate(authorizer, deadline_seconds=30.0)
    in_flight = asyncio.create_task(FakeAsterisk(env_of()).call(gate.port))
    await asyncio.wait_for(authorizer.entered.wait(), BOUND)

    await asyncio.wait_for(gate.close(drain_timeout=0.1), BOUND)
    seen = await asyncio.wait_for(in_flight, BOUND)

    assert authorizer.cancelled
    assert seen.variables == {}
    assert seen.closed_by_server or seen.reset


async def test_a_gate_that_never_started_closes_quietly() -> None:
    await GateServer(ScriptedAuthorizer(), GateOptions(port=0)).close(drain_timeout=0.1)
