"""A fake Asterisk for the gate: it speaks AGI as the recordings in tests/data/asterisk-traces show.

`AsteriskChannel` answers command lines as res_agi.c does (200 / 510 / 511 / 520, HANGUP
notices) and remembers the channel variables; `FakeAsterisk` is the FastAGI client side (sends an
env block byte for byte, then answers the server's commands); `AsteriskPipes` is the local-AGI
side (the stdin/stdout pair pyst2 is given). Misbehaviour is scripted per command index.

`DialplanChannel.request()` is what a real Asterisk sends when a channel runs the AGI line of
the shipped dialplan (etc/asterisk/extensions_coobill.conf): the line's variables substituted
first, then the data split on commas as AST_STANDARD_APP_ARGS splits it, then setup_env's
block (res_agi.c:2450-2494).
"""

from __future__ import annotations

import asyncio
import io
import queue
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.fakes.traces import REPOSITORY
from tests.fakes.traces import TRACES as TRACES_DIR

TRACE_FOLDERS = ("lab-23.4.1-basic", "lab-23.4.1-pjsip")
SAMPLE_DIALPLAN = REPOSITORY / "etc" / "asterisk" / "extensions_coobill.conf"

_STAMP = re.compile(r"^#t=\S+ ")

# res_agi.c handle_setvariable's usage, as Asterisk prints it on a wrong argument count.
SET_VARIABLE_USAGE = (
    "520-Invalid command syntax.  Proper usage follows:",
    " Usage: SET VARIABLE <variablename> <value>",
    "520 End of proper usage.",
)
INVALID_COMMAND = "510 Invalid or unknown command"
DEAD_CHANNEL = "511 Command Not Permitted on a dead channel or intercept routine"
_DEAD_SAFE = ("SET VARIABLE", "GET VARIABLE", "GET FULL VARIABLE", "EXEC", "NOOP", "VERBOSE",
              "DATABASE")


def trace_files() -> list[Path]:
    """Every recorded FastAGI conversation, both lab folders."""
    return sorted(p for folder in TRACE_FOLDERS for p in (TRACES_DIR / folder).glob("agi-*.txt"))


def _trace_lines(path: Path) -> Iterable[tuple[str, str]]:
    for line in path.read_text(encoding="utf-8").splitlines():
        line = _STAMP.sub("", line)
        if line.startswith("<<< ") or line == "<<<":
            yield "<<<", line[4:]
        elif line.startswith(">>> "):
            yield ">>>", line[4:]


def load_trace_env(path: Path) -> list[tuple[str, str]]:
    """The `<<<` environment lines of a trace, in order, as (name, value)."""
    env: list[tuple[str, str]] = []
    for direction, text in _trace_lines(path):
        if direction != "<<<" or text == "request":
            continue
        if text == "":
            return env
        name, _, value = text.partition(": ")
        env.append((name, value))
    raise ValueError(f"{path}: the environment block never ends")


def load_trace_commands(path: Path) -> list[str]:
    """The command lines the recorded gate sent (`>>>`)."""
    return [text for direction, text in _trace_lines(path) if direction == ">>>"]


def env_block(env: Iterable[tuple[str, str]]) -> bytes:
    """`name: value\\n` lines and the blank line, as Asterisk writes them."""
    return "".join(f"{name}: {value}\n" for name, value in env).encode("utf-8") + b"\n"


def parse_agi_args(line: str) -> list[str]:
    """Split a command line as res_agi.c parse_args does: spaces, "quotes", \\ escapes."""
    args: list[str] = []
    current: list[str] | None = None
    quoted = escaped = False
    for char in line:
        if char == "\\" and not escaped:
            escaped = True
            continue
        if char == '"' and not escaped:
            quoted = not quoted
            if current is None:
                current = []
            continue
        if char in " \t" and not quoted and not escaped:
            if current is not None:
                args.append("".join(current))
                current = None
            continue
        if current is None:
            current = []
        current.append(char)
        escaped = False
    if current is not None:
        args.append("".join(current))
    return args


@dataclass
class AsteriskChannel:
    """The Asterisk end of an AGI session: answers each command line, records what it did.

    `replies` maps a command's index (0 = first command) to scripted reply lines;
    `hangup_before_reply` lists indices whose reply is preceded by an inline `HANGUP` line
    (after which the channel is dead and only dead-safe commands run).
    """

    replies: Mapping[int, Sequence[str]] = field(default_factory=dict)
    hangup_before_reply: frozenset[int] = frozenset()
    commands: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    executed: list[tuple[str, str]] = field(default_factory=list)
    hung_up: bool = False

    def answer(self, line: str) -> list[str]:
        index = len(self.commands)
        self.commands.append(line)
        notice = []
        if index in self.hangup_before_reply:
            self.hung_up = True
            notice = ["HANGUP"]
        if index in self.replies:
            return notice + list(self.replies[index])
        return notice + self._run(parse_agi_args(line))

    def _run(self, args: list[str]) -> list[str]:
        words = " ".join(args[:3]).upper()
        if self.hung_up and not any(words.startswith(p) for p in _DEAD_SAFE):
            return [DEAD_CHANNEL]
        if words.startswith("SET VARIABLE"):
            if len(args) != 4:
                return list(SET_VARIABLE_USAGE)
            self.variables[args[2]] = args[3]
            return ["200 result=1"]
        if args and args[0].upper() == "EXEC" and len(args) >= 2:
            self.executed.append((args[1], " ".join(args[2:])))
            return ["200 result=0" if args[1].lower() == "set" else "200 result=-2"]
        return [INVALID_COMMAND]


@dataclass
class Conversation:
    """What a fake call saw: the commands, the variables they set, how it ended."""

    channel: AsteriskChannel
    closed_by_server: bool = False
    reset: bool = False

    @property
    def commands(self) -> list[str]:
        return self.channel.commands

    @property
    def variables(self) -> dict[str, str]:
        return self.channel.variables


class FakeAsterisk:
    """Asterisk's FastAGI client: connects, sends the env block, answers until the server closes.

    `env_bytes` replaces the env block (garbage, partial blocks); `close_after_env` closes the
    connection right after it is sent; `stall_after_env` keeps the connection open without
    sending or answering anything.
    """

    def __init__(
        self,
        env: Iterable[tuple[str, str]] = (),
        *,
        env_bytes: bytes | None = None,
        close_after_env: bool = False,
        stall_after_env: bool = False,
        replies: Mapping[int, Sequence[str]] | None = None,
        hangup_before_reply: Iterable[int] = (),
    ) -> None:
        self.env_bytes = env_block(env) if env_bytes is None else env_bytes
        self.close_after_env = close_after_env
        self.stall_after_env = stall_after_env
        self.replies = dict(replies or {})
        self.hangup_before_reply = frozenset(hangup_before_reply)

    async def call(self, port: int, host: str = "127.0.0.1") -> Conversation:
        channel = AsteriskChannel(self.replies, self.hangup_before_reply)
        conversation = Conversation(channel)
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(self.env_bytes)
            await writer.drain()
            if self.close_after_env:
                return conversation
            while True:
                raw = await reader.readline()
                if not raw:
                    conversation.closed_by_server = True
                    return conversation
                if self.stall_after_env:
                    continue  # read and drop: a peer that never answers
                lines = channel.answer(raw.decode("utf-8").rstrip("\n"))
                writer.write("".join(f"{line}\n" for line in lines).encode("utf-8"))
                await writer.drain()
        except ConnectionError:
            conversation.reset = True
            return conversation
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                conversation.reset = True


class AsteriskPipes:
    """The stdin/stdout pair Asterisk gives a local AGI script, for pyst2's `AGI(stdin, stdout)`.

    stdin yields the env block, then one reply per command line written to stdout. It never
    blocks: a read with no command pending is EOF (Asterisk gone).
    """

    def __init__(self, env: Iterable[tuple[str, str]], channel: AsteriskChannel | None = None):
        self.channel = channel or AsteriskChannel()
        self._pending: queue.SimpleQueue[str] = queue.SimpleQueue()
        for line in env_block(env).decode("utf-8").splitlines(keepends=True):
            self._pending.put(line)
        self.stdin = _Stdin(self._pending)
        self.stdout = _Stdout(self._on_command)
        self.written: list[str] = []

    def _on_command(self, line: str) -> None:
        self.written.append(line)
        for reply in self.channel.answer(line):
            self._pending.put(reply + "\n")


class _Stdin:
    def __init__(self, pending: queue.SimpleQueue[str]) -> None:
        self._pending = pending

    def readline(self) -> str:
        try:
            return self._pending.get_nowait()
        except queue.Empty:
            return ""


class _Stdout(io.StringIO):
    def __init__(self, on_line) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self._on_line = on_line
        self._partial = ""

    def write(self, text: str) -> int:
        self._partial += text
        while "\n" in self._partial:
            line, self._partial = self._partial.split("\n", 1)
            self._on_line(line)
        return len(text)


# -- the shipped dialplan, run by a fake channel -------------------------------------------

_AGI_APP = re.compile(r"^\s*same\s*=>\s*n(?:\([^)]*\))?,AGI\((?P<data>.*)\)\s*(?:;.*)?$")
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\([^)]*\))?)\}")


def shipped_agi_data(path: Path = SAMPLE_DIALPLAN) -> str:
    """The data of the one live (uncommented) FastAGI line of the shipped dialplan."""
    found = [m["data"] for line in path.read_text(encoding="utf-8").splitlines()
             if (m := _AGI_APP.match(line)) and m["data"].startswith("agi://")]
    if len(found) != 1:
        raise ValueError(f"{path}: expected one live AGI(agi://…) line, found {found}")
    return found[0]


def separate_args(data: str) -> list[str]:
    """main/app.c __ast_app_separate_args(buf, ',', remove_chars=1): commas split except
    inside (), [] or "quotes"; quotes and backslashes are removed."""
    args: list[str] = []
    current: list[str] = []
    paren = bracket = 0
    quoted = False
    chars = iter(data)
    for char in chars:
        if char == "(":
            paren += 1
        elif char == ")":
            paren = max(paren - 1, 0)
        elif char == "[":
            bracket += 1
        elif char == "]":
            bracket = max(bracket - 1, 0)
        elif char == '"':
            quoted = not quoted
            continue
        elif char == "\\":
            char = next(chars, "")
        elif char == "," and not paren and not bracket and not quoted:
            args.append("".join(current))
            current = []
            continue
        current.append(char)
    args.append("".join(current))
    return args


@dataclass
class DialplanChannel:
    """A channel that runs the shipped dialplan's AGI line.

    `endpoint` is the endpoint chan_pjsip matched the call to (PJSIP only: on any other
    technology CHANNEL(endpoint) fails and substitutes as empty, func_channel_read);
    `caller_id` is CALLERID(num), whatever the phone put in its From header.
    """

    name: str
    caller_id: str
    exten: str
    endpoint: str = ""
    caller_name: str = "unknown"
    uniqueid: str = "1795357552.31"
    context: str = "coobill-outbound"

    @property
    def technology(self) -> str:
        return self.name.partition("/")[0]

    def variable(self, name: str) -> str:
        values = {
            "CHANNEL(endpoint)": self.endpoint if self.technology == "PJSIP" else "",
            "EXTEN": self.exten,
            "CALLERID(num)": self.caller_id,
            "CALLERID(name)": self.caller_name,
            "CHANNEL": self.name,
            "UNIQUEID": self.uniqueid,
        }
        if name not in values:
            raise KeyError(f"the fake dialplan does not know ${{{name}}}")
        return values[name]

    def request(self, data: str | None = None) -> list[tuple[str, str]]:
        """The environment Asterisk sends for AGI(`data`), the shipped line by default."""
        data = shipped_agi_data() if data is None else data
        url, *args = separate_args(_VARIABLE.sub(lambda m: self.variable(m["name"]), data))
        script = url.removeprefix("agi://").partition("/")[2]
        env = [("agi_network", "yes")]
        if script:
            env.append(("agi_network_script", script))
        env += [
            ("agi_request", url), ("agi_channel", self.name), ("agi_language", "en"),
            ("agi_type", self.technology), ("agi_uniqueid", self.uniqueid),
            ("agi_version", "22.5.0"), ("agi_callerid", self.caller_id or "unknown"),
            ("agi_calleridname", self.caller_name or "unknown"), ("agi_callingpres", "0"),
            ("agi_callingani2", "0"), ("agi_callington", "0"), ("agi_callingtns", "0"),
            ("agi_dnid", self.exten), ("agi_rdnis", "unknown"), ("agi_context", self.context),
            ("agi_extension", self.exten), ("agi_priority", "3"), ("agi_enhanced", "0.0"),
            ("agi_accountcode", ""), ("agi_threadid", "139628831086272"),
        ]
        env += [(f"agi_arg_{n}", arg) for n, arg in enumerate(args, start=1)]
        return env
