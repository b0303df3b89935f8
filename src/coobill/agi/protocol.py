"""The AGI wire format, as res_agi.c (Asterisk 23.4.1) speaks it: pure functions, no I/O.

An AGI conversation opens with an environment block (`name: value` lines, then a blank line);
then the script sends one command line at a time and Asterisk answers each with a reply:
`200 result=<int>[ (<data>)]`, `510 …`, `511 …`, or a `520-…` usage block that ends with a
line starting `520 `. Asterisk may also write a bare `HANGUP` line where a reply is expected
(res_agi.c:4329-4342): a notice, not a reply.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

HANGUP = "HANGUP"

# Commands that Asterisk still runs on a hung-up channel (res_agi.c:3878-3923, dead-safe flag).
DEAD_SAFE_PREFIXES = (
    "ASYNCAGI BREAK",
    "DATABASE ",
    "EXEC ",
    "GET FULL VARIABLE ",
    "GET VARIABLE ",
    "NOOP",
    "SET VARIABLE ",
    "VERBOSE ",
    "SPEECH DESTROY",
    "SPEECH UNLOAD GRAMMAR",
)

_REPLY = re.compile(r"^(?P<code>\d{3})(?P<sep>[ -]|$)(?P<text>.*)$")
_RESULT = re.compile(r"^result=(?P<result>-?\d+)(?: \((?P<data>[^)]*)\))?")
_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_()]*$")


class ProtocolError(Exception):
    """The peer sent something that is not AGI."""


def decode_line(raw: bytes) -> str:
    """One wire line as text: undecodable bytes replaced, the line ending dropped."""
    return raw.decode("utf-8", errors="replace").rstrip("\r\n")


def parse_environment(lines: Iterable[str]) -> dict[str, str]:
    """The agi_* variables of an environment block; lines without `": "` are ignored.

    Asterisk writes `agi_accountcode: ` with an empty value, so the split is on the first
    `": "` (or a trailing `":"`), and the value keeps any later colons (`agi_request: agi://…`).
    """
    environment: dict[str, str] = {}
    for line in lines:
        if line.endswith(":") and ": " not in line:
            name, value = line[:-1], ""
        elif ": " in line:
            name, value = line.split(": ", 1)
        else:
            continue
        name = name.strip()
        if name:
            environment[name] = value
    return environment


# One line of the block, split as parse_environment splits it: at the first ": ", or a name
# with a trailing ":" and no value.
_ENV_LINE = re.compile(r"^([^\n]*?)(?:: ([^\n]*)|:)$", re.MULTILINE)


def parse_environment_block(text: str) -> dict[str, str]:
    """parse_environment(text.split("\n")) in one pass (the gate reads a block per call)."""
    environment: dict[str, str] = {}
    for raw, value in _ENV_LINE.findall(text):
        name = raw.strip()
        if name:
            environment[name] = value
    return environment


def format_environment(environment: Iterable[tuple[str, str]]) -> bytes:
    """An environment block as Asterisk writes it; values must not break the line framing."""
    block = []
    for name, value in environment:
        if "\n" in name or "\r" in name or "\n" in value or "\r" in value:
            raise ValueError(f"an AGI environment line cannot hold a line break: {name!r}")
        block.append(f"{name}: {value}\n")
    block.append("\n")
    return "".join(block).encode("utf-8")


@dataclass(frozen=True, slots=True)
class Reply:
    """Asterisk's answer to one command; `lines` holds every line of a multi-line 520."""

    code: int
    text: str
    lines: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.code == 200

    @property
    def result(self) -> int | None:
        match = _RESULT.match(self.text)
        return int(match["result"]) if match else None

    @property
    def data(self) -> str | None:
        match = _RESULT.match(self.text)
        return match["data"] if match else None


def reply_code(line: str) -> tuple[int, bool]:
    """The code of a reply line and whether more lines follow (`520-`); ProtocolError if none."""
    match = _REPLY.match(line)
    if match is None:
        raise ProtocolError(f"not an AGI reply: {line[:80]!r}")
    return int(match["code"]), match["sep"] == "-"


def parse_reply(lines: Iterable[str]) -> Reply:
    """A complete reply (one line, or a `520-` block through its `520 ` line)."""
    collected = tuple(lines)
    if not collected:
        raise ProtocolError("empty AGI reply")
    code, _ = reply_code(collected[0])
    return Reply(code=code, text=collected[0][4:], lines=collected)


def ends_usage_block(line: str) -> bool:
    """True for the line that closes a multi-line 520 reply (res_agi.c:4237-4240)."""
    return line.startswith("520 ")


def quote(value: str) -> str:
    """A double-quoted AGI argument, escaped as res_agi.c parse_args unescapes it."""
    if "\n" in value or "\r" in value:
        raise ValueError("an AGI argument cannot hold a line break")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def set_variable(name: str, value: str) -> str:
    """`SET VARIABLE NAME "value"` — exactly four tokens, or Asterisk answers 520."""
    if not _VARIABLE_NAME.match(name):
        raise ValueError(f"not a channel variable name: {name!r}")
    return f"SET VARIABLE {name} {quote(value)}"


def exec_application(application: str, argument: str) -> str:
    """`EXEC App "argument"`; Asterisk answers `200 result=<the application's return>`."""
    if not application.isidentifier():
        raise ValueError(f"not a dialplan application: {application!r}")
    return f"EXEC {application} {quote(argument)}"


def is_dead_safe(command: str) -> bool:
    """True if Asterisk still runs `command` after the channel hung up."""
    upper = command.upper()
    return any(upper.startswith(prefix) for prefix in DEAD_SAFE_PREFIXES)


def route_of(environment: Mapping[str, str]) -> str:
    """The script part of `agi://host/script?query`, without the query Asterisk passes verbatim."""
    return environment.get("agi_network_script", "").split("?", 1)[0]
