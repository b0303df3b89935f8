"""`coobill-agi`: the local AGI script relays the daemon's gate, and fails closed without it."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
from asterisk.agi import AGI

from coobill.agi.gate import gate_commands
from coobill.agi.stdio import RELAYED, daemon_address, relay_environment, run
from coobill.errors import ConfigurationError
from coobill.services.commands import AuthorizeCall, Reason, Verdict
from tests.agi.conftest import StartGate
from tests.agi.test_gate_conversation import BOUND
from tests.fakes.asterisk_agi import AsteriskChannel, AsteriskPipes, env_block
from tests.fakes.authorizer import THIRTY_SECONDS, ScriptedAuthorizer

pytestmark = pytest.mark.usefixtures("sighup_restored")

# What Asterisk hands a local `AGI(coobill-agi,${CHANNEL(endpoint)},${EXTEN})` on stdin.
LOCAL_ENV = [
    ("agi_request", "coobill-agi"),
    ("agi_channel", "PJSIP/100-00000000"),
    ("agi_language", "en"),
    ("agi_type", "PJSIP"),
    ("agi_uniqueid", "1795610072.0"),
    ("agi_version", "23.4.1"),
    ("agi_callerid", "100"),
    ("agi_calleridname", "Alice"),
    ("agi_context", "sipphones"),
    ("agi_extension", "9138000001"),
    ("agi_priority", "2"),
    ("agi_enhanced", "0.0"),
    ("agi_accountcode", ""),
    ("agi_arg_1", "100"),
    ("agi_arg_2", "9138000001"),
]
FAIL_CLOSED_COMMANDS = [
    'SET VARIABLE COOBILL_RESULT "DENY"',
    'SET VARIABLE COOBILL_REASON "error"',
    'SET VARIABLE COOBILL_LIMIT ""',
    'SET VARIABLE COOBILL_DIAL_OPTIONS ""',
]


def local_agi(pipes: AsteriskPipes) -> AGI:
    """pyst2's AGI on the fake pipes; built here, on the main thread, for its SIGHUP handler."""
    return AGI(stdin=pipes.stdin, stdout=pipes.stdout, stderr=io.StringIO())


def environ_for(port: int) -> dict[str, str]:
    return {"COOBILL_AGI__HOST": "127.0.0.1", "COOBILL_AGI__PORT": str(port)}


async def relay_once(pipes: AsteriskPipes, environ: dict[str, str], **kw: float) -> int:
    agi = local_agi(pipes)
    return await asyncio.wait_for(asyncio.to_thread(run, agi, environ, **kw), BOUND)


@pytest.fixture
async def unused_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def mute_daemon() -> AsyncIterator[int]:
    """A daemon that accepts the connection and never says a word."""
    connections: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    yield int(server.sockets[0].getsockname()[1])
    for writer in connections:
        writer.close()
    server.close()
    await server.wait_closed()


@pytest.fixture
async def daemon_cut_short() -> AsyncIterator[int]:
    """A daemon that reads the request, says ALLOW, and dies before the limit."""

    async def converse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()) not in (b"\n", b""):
            pass
        writer.write(b'SET VARIABLE COOBILL_RESULT "ALLOW"\n')
        await reader.readline()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(converse, "127.0.0.1", 0)
    yield int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()


async def test_the_relay_gives_asterisk_exactly_what_the_daemon_decided(
    start_gate: StartGate,
) -> None:
    authorizer = ScriptedAuthorizer(THIRTY_SECONDS)
    gate = await start_gate(authorizer)
    pipes = AsteriskPipes(LOCAL_ENV)
    assert await relay_once(pipes, environ_for(gate.port)) == 0
    assert pipes.written == [
        'SET VARIABLE COOBILL_LIMIT "30"',
        'SET VARIABLE COOBILL_DIAL_OPTIONS "L(30000)"',
        'EXEC Set "TIMEOUT(absolute)=90"',
        'SET VARIABLE COOBILL_REASON "ok"',
        'SET VARIABLE COOBILL_RESULT "ALLOW"',
    ]
    assert authorizer.calls == [
        AuthorizeCall("1795610072.0", "100", "9138000001", "PJSIP/100-00000000", "Alice")
    ]


async def test_a_hangup_notice_on_stdin_is_relayed_and_the_conversation_stays_in_step(
    start_gate: StartGate,
) -> None:
    gate = await start_gate(ScriptedAuthorizer(THIRTY_SECONDS))
    pipes = AsteriskPipes(LOCAL_ENV, AsteriskChannel(hangup_before_reply=frozenset({1})))
    await relay_once(pipes, environ_for(gate.port))
    assert pipes.channel.variables["COOBILL_DIAL_OPTIONS"] == "L(30000)"
    assert len(pipes.written) == 5


async def test_a_usage_reply_is_relayed_whole_and_the_daemon_takes_the_allow_back(
    start_gate: StartGate,
) -> None:
    usage = ["520-Invalid command syntax.  Proper usage follows:", " Usage: SET VARIABLE",
             "520 End of proper usage."]
    gate = await start_gate(ScriptedAuthorizer(THIRTY_SECONDS))
    pipes = AsteriskPipes(LOCAL_ENV, AsteriskChannel(replies={2: usage}))
    await relay_once(pipes, environ_for(gate.port))
    assert pipes.channel.variables["COOBILL_RESULT"] == "DENY"
    assert pipes.written[3:] == FAIL_CLOSED_COMMANDS


async def test_with_the_daemon_down_the_script_denies_for_error_itself(unused_port: int) -> None:
    pipes = AsteriskPipes(LOCAL_ENV)
    assert await relay_once(pipes, environ_for(unused_port)) == 0
    assert pipes.written == FAIL_CLOSED_COMMANDS
    assert pipes.channel.variables == {
        "COOBILL_RESULT": "DENY", "COOBILL_REASON": "error",
        "COOBILL_LIMIT": "", "COOBILL_DIAL_OPTIONS": "",
    }


async def test_a_daemon_that_never_answers_is_given_up_and_the_script_fails_closed(
    mute_daemon: int,
) -> None:
    pipes = AsteriskPipes(LOCAL_ENV)
    await relay_once(pipes, environ_for(mute_daemon), timeout=0.3)
    assert pipes.written == FAIL_CLOSED_COMMANDS


async def test_a_daemon_that_dies_after_allow_but_before_the_limit_is_overruled_by_a_deny(
    daemon_cut_short: int,
) -> None:
    pipes = AsteriskPipes(LOCAL_ENV)
    await relay_once(pipes, environ_for(daemon_cut_short))
    assert pipes.written == ['SET VARIABLE COOBILL_RESULT "ALLOW"', *FAIL_CLOSED_COMMANDS]
    assert pipes.channel.variables["COOBILL_RESULT"] == "DENY"


async def test_a_daemon_that_refuses_the_request_is_relayed_as_a_deny(
    start_gate: StartGate,
) -> None:
    gate = await start_gate()
    env = [(k, "abc" if k == "agi_arg_1" else v) for k, v in LOCAL_ENV]
    pipes = AsteriskPipes(env)
    await relay_once(pipes, environ_for(gate.port))
    assert pipes.channel.variables["COOBILL_REASON"] == "bad_request"


async def test_a_bad_port_setting_fails_closed() -> None:
    pipes = AsteriskPipes(LOCAL_ENV)
    await relay_once(pipes, {"COOBILL_AGI__PORT": "agi"})
    assert pipes.written == FAIL_CLOSED_COMMANDS


def test_the_daemon_address_defaults_to_the_local_gate() -> None:
    assert daemon_address({}) == ("127.0.0.1", 4573)
    assert daemon_address({"COOBILL_AGI__HOST": "pbx-gate", "COOBILL_AGI__PORT": "14573"}) == (
        "pbx-gate", 14573,
    )
    with pytest.raises(ConfigurationError):
        daemon_address({"COOBILL_AGI__PORT": "70000"})


def test_the_relayed_request_is_dressed_as_a_fastagi_authorize() -> None:
    env = dict(LOCAL_ENV, agi_arg_1="999")
    block = relay_environment(env, ["100", "9138000001"])
    assert block[:2] == [("agi_network", "yes"), ("agi_network_script", "authorize")]
    assert block[-2:] == [("agi_arg_1", "100"), ("agi_arg_2", "9138000001")]
    assert ("agi_channel", "PJSIP/100-00000000") in block


def test_the_console_script_fails_closed_and_exits_zero_when_the_daemon_is_down(
    unused_port: int,
) -> None:
    """The real entry point on real pipes, with a Latin-1 caller name on stdin."""
    env = [(k, v) for k, v in LOCAL_ENV if k != "agi_calleridname"]
    stdin = env_block(env).replace(b"agi_version", b"agi_calleridname: Jos\xe9\nagi_version")
    stdin += b"200 result=1\n" * 4
    done = subprocess.run(
        [sys.executable, "-m", "coobill.agi.stdio", "100", "9138000001"],
        input=stdin, capture_output=True, timeout=30,
        env={**os.environ, **environ_for(unused_port)}, check=False,
    )
    assert done.returncode == 0
    assert done.stdout.decode().splitlines() == FAIL_CLOSED_COMMANDS
    assert b"gate.relay_failed" in done.stderr


def rogue_daemon(commands: list[bytes], answers: list[bytes]):  # type: ignore[no-untyped-def]
    """Whatever answers on the gate's port: reads the request, sends `commands` one by one,
    records each answer it gets."""

    async def converse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()) not in (b"\n", b""):
            pass
        for command in commands:
            writer.write(command + b"\n")
            await writer.drain()
            answer = await reader.readline()
            answers.append(answer)
            if not answer:
                break
        writer.close()

    return asyncio.start_server(converse, "127.0.0.1", 0)


@pytest.mark.parametrize("command", [
    b'EXEC System "id > /tmp/coobill-rogue"',
    b'EXEC Set "COOBILL_RESULT=ALLOW"',
    b'EXEC Set "TIMEOUT(absolute)=30" extra',
    b'SET VARIABLE COOBILL_RESULT "MAYBE"',
    b'SET VARIABLE COOBILL_LIMIT "30 "',
    b'SET VARIABLE COOBILL_DIAL_OPTIONS "L(30000)gT"',
    b'SET VARIABLE AGIEXECFULL "yes"',
    b'SET VARIABLE COOBILL_REASON "ok" x',
    b"GET VARIABLE COOBILL_RESULT",
    b"HANGUP",
])
async def test_a_rogue_listener_gets_nothing_past_the_relay_and_the_channel_is_denied(
    command: bytes,
) -> None:
    answers: list[bytes] = []
    server = await rogue_daemon([b'SET VARIABLE COOBILL_LIMIT "30"', command], answers)
    try:
        pipes = AsteriskPipes(LOCAL_ENV)
        await relay_once(pipes, environ_for(int(server.sockets[0].getsockname()[1])))
    finally:
        server.close()
        await server.wait_closed()
    assert pipes.written == ['SET VARIABLE COOBILL_LIMIT "30"', *FAIL_CLOSED_COMMANDS]
    assert pipes.channel.executed == []
    assert answers == [b"200 result=1\n", b"510 Invalid or unknown command\n"]
    assert pipes.channel.variables["COOBILL_RESULT"] == "DENY"


@pytest.mark.parametrize("reason", list(Reason))
@pytest.mark.parametrize("limit", [None, 1, 30, 10800, 999_999_999])
def test_every_command_the_gate_can_send_is_relayed(reason: Reason, limit: int | None) -> None:
    for allowed in (True, False):
        for low in (False, True):
            verdict = Verdict(allowed=allowed, reason=reason, limit_seconds=limit,
                              low_balance=low)
            for command in gate_commands(verdict, ring_allowance_seconds=999_999):
                assert RELAYED.fullmatch(command), command


def test_every_argument_is_forwarded_so_the_gate_can_refuse_extra_ones() -> None:
    env = [*LOCAL_ENV, ("agi_arg_3", "9138000001")]
    pipes = AsteriskPipes(env)
    agi = local_agi(pipes)
    sent: list[list[tuple[str, str]]] = []

    def relay_spy(asterisk, address, environment, **kw):  # type: ignore[no-untyped-def]
        sent.append(environment)
        return True

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("coobill.agi.stdio.relay", relay_spy)
        run(agi, environ_for(1))
    assert sent[0][-3:] == [("agi_arg_1", "100"), ("agi_arg_2", "9138000001"),
                            ("agi_arg_3", "9138000001")]
