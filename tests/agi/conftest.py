from __future__ import annotations

import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest

from coobill.agi.server import GateOptions, GateServer, OnDecision
from tests.fakes.asterisk_agi import TRACES_DIR
from tests.fakes.authorizer import ScriptedAuthorizer

StartGate = Callable[..., Awaitable[GateServer]]

# Short enough that a fault test ends fast, long enough for a loaded CI machine.
TEST_OPTIONS = GateOptions(host="127.0.0.1", port=0, deadline_seconds=2.0)


@pytest.fixture
async def start_gate() -> AsyncIterator[StartGate]:
    """Starts gates on a free loopback port; every one is closed when the test ends."""
    started: list[GateServer] = []

    async def start(
        authorizer: ScriptedAuthorizer | None = None,
        *,
        on_decision: OnDecision | None = None,
        **options: object,
    ) -> GateServer:
        gate = GateServer(
            authorizer or ScriptedAuthorizer(),
            replace(TEST_OPTIONS, **options),  # type: ignore[arg-type]
            on_decision=on_decision,
        )
        await gate.start()
        started.append(gate)
        return gate

    yield start
    for gate in started:
        await gate.close(drain_timeout=1.0)


@pytest.fixture
def gate_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="coobill.gate")
    return caplog


@pytest.fixture
def traces_available() -> None:
    """The recordings are the ground truth: without them the suite must fail, not pass."""
    if not TRACES_DIR.is_dir():
        pytest.fail(f"the recorded Asterisk traces are not at {TRACES_DIR} (set COOBILL_TRACES)")


@pytest.fixture
def sighup_restored():  # type: ignore[no-untyped-def]
    """pyst2's AGI() installs a SIGHUP handler; put the test runner's back afterwards."""
    previous = signal.getsignal(signal.SIGHUP)
    yield
    signal.signal(signal.SIGHUP, previous)


def messages(caplog: pytest.LogCaptureFixture, prefix: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(prefix)]
