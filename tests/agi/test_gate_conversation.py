"""The gate's conversations with a well-behaved Asterisk: what it asks, what it sets."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from coobill.services.commands import AuthorizeCall, Reason, Verdict
from tests.agi.conftest import StartGate, messages
from tests.fakes.asterisk_agi import (
    TRACES_DIR,
    Conversation,
    FakeAsterisk,
    env_block,
    load_trace_commands,
    load_trace_env,
    trace_files,
)
from tests.fakes.authorizer import THIRTY_SECONDS, ScriptedAuthorizer

BOUND = 5.0  # seconds any single fake call may take before the test fails
ANSWERED = TRACES_DIR / "lab-23.4.1-basic" / "agi-answered_limit_not_reached.txt"
UNLIMITED = Verdict.allow_unlimited(Reason.UNBILLED)


def env_of(path: Path = ANSWERED, **changes: str) -> list[tuple[str, str]]:
    env = [(name, changes.pop(name, value)) for name, value in load_trace_env(path)]
    return env + list(changes.items())


async def call(gate_port: int, fake: FakeAsterisk) -> Conversation:
    return await asyncio.wait_for(fake.call(gate_port), BOUND)


def recorded_verdict(path: Path) -> Verdict:
    """The verdict the recorded stand-in gate gave, read back from its commands."""
    commands = load_trace_commands(path)
    if 'SET VARIABLE COOBILL_RESULT "DENY"' in commands:
        return Verdict.deny(Reason.NO_FUNDS)
    limit = next(c for c in commands if c.startswith("SET VARIABLE COOBILL_LIMIT "))
    return Verdict(allowed=True, reason=Reason.OK, limit_seconds=int(limit.split('"')[1]))


pytestmark = pytest.mark.usefixtures("traces_available")


@pytest.mark.parametrize("trace", trace_files(), ids=lambda p: f"{p.parent.name}/{p.stem}")
async def test_every_recorded_request_reaches_the_ledger_as_the_right_call(
    start_gate: StartGate, trace: Path
) -> None:
    env = dict(load_trace_env(trace))
    authorizer = ScriptedAuthorizer()
    gate = await start_gate(authorizer)
    await call(gate.port, FakeAsterisk(load_trace_env(trace)))
    assert authorizer.calls == [
        AuthorizeCall(
            uniqueid=env["agi_uniqueid"],
            extension=env["agi_arg_1"],
            number=env["agi_arg_2"],
            channel=env["agi_channel"],
            caller_name=env["agi_calleridname"],
            # The lab recorded the old form, AGI(…,${CALLERID(num)},${EXTEN}): on its Local
            # channels that is the caller ID, on PJSIP/100 it equals the endpoint.
            payer_source="caller_id" if env["agi_type"] == "Local" else "endpoint",
        )
    ]


@pytest.mark.parametrize("trace", trace_files(), ids=lambda p: f"{p.parent.name}/{p.stem}")
async def test_every_recorded_answer_is_given_again(
    start_gate: StartGate, trace: Path
) -> None:
    """Whatever the recorded stand-in sent (it skipped some variables), we send, and Asterisk
    takes it as it did then. The order is ours: the stand-in said ALLOW first; coobill says it
    last, after the limit (a conversation cut short never leaves an ALLOW without its limit)."""
    gate = await start_gate(ScriptedAuthorizer(recorded_verdict(trace)))
    seen = await call(gate.port, FakeAsterisk(load_trace_env(trace)))
    recorded = load_trace_commands(trace)
    assert sorted(c for c in seen.commands if c in recorded) == sorted(recorded)
    if 'SET VARIABLE COOBILL_RESULT "ALLOW"' in recorded:
        assert seen.commands[-1] == 'SET VARIABLE COOBILL_RESULT "ALLOW"'
    else:
        assert seen.commands[0] == 'SET VARIABLE COOBILL_RESULT "DENY"'
    assert seen.closed_by_server


async def test_a_limited_allow_is_the_recorded_conversation_plus_the_reason_allow_last(
    start_gate: StartGate,
) -> None:
    gate = await start_gate(ScriptedAuthorizer(THIRTY_SECONDS))
    seen = await call(gate.port, FakeAsterisk(env_of()))
    recorded = load_trace_commands(ANSWERED)  # ALLOW, LIMIT, DIAL_OPTIONS, TIMEOUT
    assert seen.commands == [*recorded[1:], 'SET VARIABLE COOBILL_REASON "ok"', recorded[0]]
    assert seen.variables == {
        "COOBILL_RESULT": "ALLOW",
        "COOBILL_REASON": "ok",
        "COOBILL_LIMIT": "30",
        "COOBILL_DIAL_OPTIONS": "L(30000)",
    }
    assert seen.channel.executed == [("Set", "TIMEOUT(absolute)=90")]


async def test_the_backstop_is_the_limit_plus_the_configured_ring_allowance(
    start_gate: StartGate,
) -> None:
    gate = await start_gate(ScriptedAuthorizer(THIRTY_SECONDS), ring_allowance_seconds=25)
    seen = await call(gate.port, FakeAsterisk(env_of()))
    assert seen.channel.executed == [("Set", "TIMEOUT(absolute)=55")]


async def test_an_unlimited_allow_leaves_limit_and_dial_options_empty_and_sets_no_backstop(
    start_gate: StartGate,
) -> None:
    gate = await start_gate(ScriptedAuthorizer(UNLIMITED))
    seen = await call(gate.port, FakeAsterisk(env_of()))
    assert seen.variables == {
        "COOBILL_RESULT": "ALLOW",
        "COOBILL_REASON": "unbilled",
        "COOBILL_LIMIT": "",
        "COOBILL_DIAL_OPTIONS": "",
    }
    assert seen.channel.executed == []


@pytest.mark.parametrize("reason", list(Reason), ids=str)
async def test_a_deny_sets_its_reason_and_empty_limits(
    start_gate: StartGate, reason: Reason
) -> None:
    gate = await start_gate(ScriptedAuthorizer(Verdict.deny(reason)))
    seen = await call(gate.port, FakeAsterisk(env_of()))
    assert seen.variables == {
        "COOBILL_RESULT": "DENY",
        "COOBILL_REASON": str(reason),
        "COOBILL_LIMIT": "",
        "COOBILL_DIAL_OPTIONS": "",
    }
    assert seen.channel.executed == []


async def test_a_deny_that_claims_a_limit_still_gives_no_limit(start_gate: StartGate) -> None:
    verdict = Verdict(allowed=False, reason=Reason.LOCKED, limit_seconds=30)
    gate = await start_gate(ScriptedAuthorizer(verdict))
    seen = await call(gate.port, FakeAsterisk(env_of()))
    assert (seen.variables["COOBILL_LIMIT"], seen.variables["COOBILL_DIAL_OPTIONS"]) == ("", "")


async def test_an_allow_with_zero_seconds_is_told_as_a_deny_for_no_funds(
    start_gate: StartGate, gate_log: pytest.LogCaptureFixture
) -> None:
    gate = await start_gate(ScriptedAuthorizer(Verdict(True, Reason.OK, limit_seconds=0)))
    seen = await call(gate.port, FakeAsterisk(env_of()))
    assert seen.variables["COOBILL_RESULT"] == "DENY"
    assert seen.variables["COOBILL_REASON"] == "no_funds"
    assert not any("L(0)" in c for c in seen.commands)
    assert "verdict=DENY reason=no_funds" in messages(gate_log, "gate.decision")[0]


async def test_each_decision_is_one_key_value_log_line(
    start_gate: StartGate, gate_log: pytest.LogCaptureFixture
) -> None:
    gate = await start_gate(ScriptedAuthorizer(THIRTY_SECONDS))
    await call(gate.port, FakeAsterisk(env_of()))
    assert messages(gate_log, "gate.decision") == [
        "gate.decision uniqueid=1795357552.31 ext=100 payer=caller_id number=913800000000 "
        "verdict=ALLOW reason=ok limit=30 held=0.1500 rate=7"
    ]


async def test_each_decision_is_reported_with_its_request_and_latency(
    start_gate: StartGate,
) -> None:
    decisions: list[tuple[AuthorizeCall | None, Verdict, float]] = []
    authorizer = ScriptedAuthorizer(THIRTY_SECONDS)
    gate = await start_gate(authorizer, on_decision=lambda *d: decisions.append(d))
    await call(gate.port, FakeAsterisk(env_of()))
    await call(gate.port, FakeAsterisk(env_of(agi_network_script="nowhere")))
    (first, verdict, latency), (second, refusal, _) = decisions
    assert (first, verdict) == (authorizer.calls[0], THIRTY_SECONDS)
    assert latency >= 0
    assert (second, refusal) == (None, Verdict.deny(Reason.BAD_REQUEST))


async def test_a_failing_decision_callback_does_not_change_what_the_channel_is_told(
    start_gate: StartGate,
) -> None:
    def broken_metrics(*_: object) -> None:
        raise RuntimeError("metrics backend gone")

    gate = await start_gate(ScriptedAuthorizer(THIRTY_SECONDS), on_decision=broken_metrics)
    seen = await call(gate.port, FakeAsterisk(env_of()))
    assert seen.variables["COOBILL_RESULT"] == "ALLOW"


async def test_a_query_string_after_the_route_is_tolerated(start_gate: StartGate) -> None:
    authorizer = ScriptedAuthorizer()
    gate = await start_gate(authorizer)
    seen = await call(gate.port, FakeAsterisk(env_of(agi_network_script="authorize?acct=42")))
    assert seen.variables["COOBILL_RESULT"] == "ALLOW"
    assert len(authorizer.calls) == 1


async def test_a_caller_name_in_latin_1_reaches_the_ledger_with_a_replacement_character(
    start_gate: StartGate,
) -> None:
    authorizer = ScriptedAuthorizer()
    gate = await start_gate(authorizer)
    raw = env_block(env_of()).replace(b"agi_calleridname: Alice", b"agi_calleridname: Jos\xe9")
    seen = await call(gate.port, FakeAsterisk(env_bytes=raw))
    assert seen.variables["COOBILL_RESULT"] == "ALLOW"
    assert authorizer.calls[0].caller_name == "Jos\ufffd"


async def test_an_unknown_caller_name_reaches_the_ledger_as_empty(start_gate: StartGate) -> None:
    authorizer = ScriptedAuthorizer()
    gate = await start_gate(authorizer)
    await call(gate.port, FakeAsterisk(env_of(agi_calleridname="unknown")))
    assert authorizer.calls[0].caller_name == ""


async def test_env_lines_that_are_not_name_value_pairs_are_ignored(start_gate: StartGate) -> None:
    gate = await start_gate()
    raw = env_block(env_of()).replace(b"agi_type: Local\n", b"agi_type: Local\nnot a pair\n")
    seen = await call(gate.port, FakeAsterisk(env_bytes=raw))
    assert seen.variables["COOBILL_RESULT"] == "ALLOW"


async def test_concurrent_calls_are_each_answered_on_their_own_channel(
    start_gate: StartGate,
) -> None:
    gate = await start_gate(ScriptedAuthorizer(THIRTY_SECONDS))
    envs = [
        env_of(
            agi_uniqueid=f"1795357552.{n}", agi_arg_2=f"9138{n:08d}", agi_extension=f"9138{n:08d}"
        )
        for n in range(20)
    ]
    seen = await asyncio.gather(*(call(gate.port, FakeAsterisk(env)) for env in envs))
    assert all(s.variables["COOBILL_DIAL_OPTIONS"] == "L(30000)" for s in seen)


async def test_the_held_amount_appears_in_the_decision_line(
    start_gate: StartGate, gate_log: pytest.LogCaptureFixture
) -> None:
    verdict = Verdict(True, Reason.OK, limit_seconds=120, held=Decimal("1.2000"), rate_id=3)
    gate = await start_gate(ScriptedAuthorizer(verdict))
    await call(gate.port, FakeAsterisk(env_of()))
    assert "limit=120 held=1.2000 rate=3" in messages(gate_log, "gate.decision")[0]
