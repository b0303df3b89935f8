"""What the gate does when the peer, Asterisk's replies or the ledger misbehave.

Every fault ends in one log line, a DENY whenever the channel can still be told, and a server
that goes on answering the next call at once.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from coobill.services.commands import Reason, Verdict
from tests.agi.conftest import StartGate, messages
from tests.agi.test_gate_conversation import call, env_of
from tests.fakes.asterisk_agi import (
    DEAD_CHANNEL,
    INVALID_COMMAND,
    SET_VARIABLE_USAGE,
    FakeAsterisk,
    env_block,
)
from tests.fakes.authorizer import THIRTY_SECONDS, ScriptedAuthorizer

pytestmark = pytest.mark.usefixtures("traces_available")

DENIED_FOR_ERROR = {
    "COOBILL_RESULT": "DENY",
    "COOBILL_REASON": "error",
    "COOBILL_LIMIT": "",
    "COOBILL_DIAL_OPTIONS": "",
}


async def assert_next_call_is_served(port: int) -> None:
    """The event loop is free: a good call right after the fault gets its answer in time."""
    seen = await call(port, FakeAsterisk(env_of()))
    assert seen.variables["COOBILL_RESULT"] == "ALLOW"


class TestBrokenRequests:
    @pytest.mark.parametrize("script", ["billing", "authorize/extra", ""])
    async def test_an_unknown_route_is_denied_as_a_bad_request(
        self, start_gate: StartGate, gate_log: pytest.LogCaptureFixture, script: str
    ) -> None:
        authorizer = ScriptedAuthorizer()
        gate = await start_gate(authorizer)
        seen = await call(gate.port, FakeAsterisk(env_of(agi_network_script=script)))
        assert seen.variables["COOBILL_RESULT"] == "DENY"
        assert seen.variables["COOBILL_REASON"] == "bad_request"
        assert authorizer.calls == []
        assert "reason=bad_request" in messages(gate_log, "gate.decision")[0]

    @pytest.mark.parametrize(
        "changes", [{"agi_arg_1": "alice"}, {"agi_arg_2": ""}, {"agi_uniqueid": ""}]
    )
    async def test_a_request_with_a_bad_field_is_denied_as_a_bad_request(
        self, start_gate: StartGate, changes: dict[str, str]
    ) -> None:
        gate = await start_gate()
        seen = await call(gate.port, FakeAsterisk(env_of(**changes)))
        assert seen.variables["COOBILL_REASON"] == "bad_request"

    async def test_a_request_without_a_uniqueid_is_denied_as_a_bad_request(
        self, start_gate: StartGate
    ) -> None:
        gate = await start_gate()
        env = [(k, v) for k, v in env_of() if k != "agi_uniqueid"]
        seen = await call(gate.port, FakeAsterisk(env))
        assert seen.variables["COOBILL_REASON"] == "bad_request"

    async def test_a_kilobyte_of_binary_garbage_is_denied_as_a_bad_request(
        self, start_gate: StartGate
    ) -> None:
        garbage = random.Random(7).randbytes(1024).replace(b"\n", b"") + b"\n\n"
        authorizer = ScriptedAuthorizer()
        gate = await start_gate(authorizer)
        seen = await call(gate.port, FakeAsterisk(env_bytes=garbage))
        assert seen.variables["COOBILL_REASON"] == "bad_request"
        assert authorizer.calls == []

    async def test_binary_garbage_then_a_hang_up_is_logged_and_forgotten(
        self, start_gate: StartGate, gate_log: pytest.LogCaptureFixture
    ) -> None:
        gate = await start_gate()
        garbage = random.Random(11).randbytes(1024)
        await call(gate.port, FakeAsterisk(env_bytes=garbage, close_after_env=True))
        await assert_next_call_is_served(gate.port)
        await gate.close()
        assert len(messages(gate_log, "gate.fault")) == 1


class TestEndlessEnvironments:
    async def test_a_connection_closed_inside_the_environment_does_not_stall_the_server(
        self, start_gate: StartGate, gate_log: pytest.LogCaptureFixture
    ) -> None:
        """panoramisk spins on this EOF and freezes the loop; the next call must be served."""
        authorizer = ScriptedAuthorizer()
        gate = await start_gate(authorizer)
        half = env_block(env_of())[:200]
        await call(gate.port, FakeAsterisk(env_bytes=half, close_after_env=True))
        await assert_next_call_is_served(gate.port)
        await gate.close()
        assert len(authorizer.calls) == 1
        faults = messages(gate_log, "gate.fault")
        assert len(faults) == 1
        assert "fault=disconnected" in faults[0]

    async def test_a_connection_closed_before_sending_anything_is_just_closed(
        self, start_gate: StartGate, gate_log: pytest.LogCaptureFixture
    ) -> None:
        """A TCP health check: no request, nothing to answer, one quiet line per 10 s
        however many there are (a flood of them must not fill the disk)."""
        gate = await start_gate()
        for _ in range(50):
            await call(gate.port, FakeAsterisk(env_bytes=b"", close_after_env=True))
        await assert_next_call_is_served(gate.port)
        await gate.close()
        faults = messages(gate_log, "gate.fault")
        assert len(faults) == 1
        assert "fault=no_request" in faults[0]

    async def test_an_environment_that_never_ends_is_cut_by_the_deadline(
        self, start_gate: StartGate, gate_log: pytest.LogCaptureFixture
    ) -> None:
        gate = await start_gate(deadline_seconds=0.3)
        half = env_block(env_of())[:300]
        seen = await call(gate.port, FakeAsterisk(env_bytes=half, stall_after_env=True))
        assert seen.closed_by_server
        assert seen.commands == []
        await gate.close()
        assert "fault=deadline" in messages(gate_log, "gate.fault")[0]

    async def test_an_environment_of_several_megabytes_is_refused_after_the_size_limit(
        self, start_gate: StartGate, gate_log: pytest.LogCaptureFixture
    ) -> None:
        authorizer = ScriptedAuthorizer()
        gate = await start_gate(authorizer)
        lines = [(f"agi_padding_{n}", "x" * 1000) for n in range(4000)]
        await call(gate.port, FakeAsterisk(env_of() + lines))
        await assert_next_call_is_served(gate.port)
        await gate.close()
        assert len(authorizer.calls) == 1
        assert "reason=bad_request" in messages(gate_log, "gate.decision")[0]

    async def test_one_endless_line_is_refused_after_the_size_limit(
        self, start_gate: StartGate, gate_log: pytest.LogCaptureFixture
    ) -> None:
        gate = await start_gate(max_env_bytes=4096)
        endless = b"agi_network: yes\nagi_x: " + b"y" * 3_000_000
        await call(gate.port, FakeAsterisk(env_bytes=endless, stall_after_env=True))
        await assert_next_call_is_served(gate.port)
        await gate.close()
        assert "reason=bad_request" in messages(gate_log, "gate.decision")[0]


class TestAsteriskReplies:
    async def test_an_inline_hangup_is_a_notice_and_the_real_reply_follows(
        self, start_gate: StartGate
    ) -> None:
        gate = await start_gate(ScriptedAuthorizer(THIRTY_SECONDS))
        seen = await call(gate.port, FakeAsterisk(env_of(), hangup_before_reply=[0, 3]))
        assert seen.channel.hung_up
        assert len(seen.commands) == 5
        assert seen.variables["COOBILL_DIAL_OPTIONS"] == "L(30000)"

    async def test_a_dead_channel_reply_ends_the_conversation(
        self, start_gate: StartGate, gate_log: pytest.LogCaptureFixture
    ) -> None:
        gate = await start_gate(ScriptedAuthorizer(THIRTY_SECONDS))
        seen = await call(gate.port, FakeAsterisk(env_of(), replies={1: [DEAD_CHANNEL]}))
        assert len(seen.commands) == 2
        assert seen.closed_by_server
        assert "fault=reply_511" in messages(gate_log, "gate.fault")[0]

    async def test_an_invalid_command_reply_during_an_allow_takes_the_allow_back(
        self, start_gate: StartGate
    ) -> None:
        gate = await start_gate(ScriptedAuthorizer(THIRTY_SECONDS))
        seen = await call(gate.port, FakeAsterisk(env_of(), replies={2: [INVALID_COMMAND]}))
        assert seen.variables == DENIED_FOR_ERROR
        assert seen.channel.executed == []

    async def test_a_multi_line_usage_reply_is_read_to_its_end_and_the_allow_taken_back(
        self, start_gate: StartGate
    ) -> None:
        usage = [*SET_VARIABLE_USAGE[:2], " Sets a variable to the current value.",
                 SET_VARIABLE_USAGE[2]]
        gate = await start_gate(ScriptedAuthorizer(THIRTY_SECONDS))
        seen = await call(gate.port, FakeAsterisk(env_of(), replies={3: usage}))
        assert seen.variables == DENIED_FOR_ERROR
        assert len(seen.commands) == 4 + 4  # in step: every later command got its own reply

    async def test_a_single_line_usage_reply_is_read_as_one_reply(
        self, start_gate: StartGate
    ) -> None:
        single = ["520 Invalid command syntax.  Proper usage not available."]
        gate = await start_gate(ScriptedAuthorizer(THIRTY_SECONDS))
        seen = await call(gate.port, FakeAsterisk(env_of(), replies={4: single}))
        assert seen.variables == DENIED_FOR_ERROR

    async def test_a_refused_command_during_a_deny_ends_the_conversation(
        self, start_gate: StartGate
    ) -> None:
        gate = await start_gate(ScriptedAuthorizer(Verdict.deny(Reason.NO_FUNDS)))
        seen = await call(gate.port, FakeAsterisk(env_of(), replies={1: [INVALID_COMMAND]}))
        assert seen.variables == {"COOBILL_RESULT": "DENY"}
        assert len(seen.commands) == 2

    async def test_a_reply_that_is_not_agi_ends_the_conversation(
        self, start_gate: StartGate, gate_log: pytest.LogCaptureFixture
    ) -> None:
        gate = await start_gate()
        seen = await call(gate.port, FakeAsterisk(env_of(), replies={0: ["\x00\xff garbage"]}))
        assert len(seen.commands) == 1
        await gate.close()
        assert "fault=protocol" in messages(gate_log, "gate.fault")[0]

    async def test_a_peer_that_never_replies_is_cut_by_the_deadline(
        self, start_gate: StartGate, gate_log: pytest.LogCaptureFixture
    ) -> None:
        gate = await start_gate(deadline_seconds=0.3)
        seen = await call(gate.port, FakeAsterisk(env_of(), stall_after_env=True))
        assert seen.closed_by_server
        await gate.close()
        assert "fault=deadline" in messages(gate_log, "gate.fault")[0]

    async def test_a_peer_that_leaves_mid_conversation_is_logged_and_forgotten(
        self, start_gate: StartGate, gate_log: pytest.LogCaptureFixture
    ) -> None:
        gate = await start_gate()
        await call(gate.port, FakeAsterisk(env_of(), close_after_env=True))
        await assert_next_call_is_served(gate.port)
        await gate.close()
        faults = messages(gate_log, "gate.fault")
        assert len(faults) == 1
        assert "fault=disconnected" in faults[0]


class TestLedgerFailures:
    async def test_a_failing_ledger_denies_for_error_by_default(
        self, start_gate: StartGate, gate_log: pytest.LogCaptureFixture
    ) -> None:
        gate = await start_gate(ScriptedAuthorizer(error=RuntimeError("database is locked")))
        seen = await call(gate.port, FakeAsterisk(env_of()))
        assert seen.variables == DENIED_FOR_ERROR
        assert messages(gate_log, "gate.authorize_failed")
        assert "verdict=DENY reason=error" in messages(gate_log, "gate.decision")[0]

    async def test_a_failing_ledger_allows_without_limit_when_configured_to(
        self, start_gate: StartGate
    ) -> None:
        authorizer = ScriptedAuthorizer(error=ConnectionRefusedError("postgres down"))
        gate = await start_gate(authorizer, on_error="allow")
        seen = await call(gate.port, FakeAsterisk(env_of()))
        assert seen.variables == {
            "COOBILL_RESULT": "ALLOW",
            "COOBILL_REASON": "error",
            "COOBILL_LIMIT": "",
            "COOBILL_DIAL_OPTIONS": "",
        }
        assert seen.channel.executed == []

    async def test_a_ledger_too_slow_for_the_deadline_is_a_failure_told_in_time(
        self, start_gate: StartGate
    ) -> None:
        never = asyncio.Event()
        authorizer = ScriptedAuthorizer(hold=never)
        gate = await start_gate(authorizer, deadline_seconds=0.5)
        seen = await call(gate.port, FakeAsterisk(env_of()))
        assert seen.variables == DENIED_FOR_ERROR
        assert authorizer.cancelled
