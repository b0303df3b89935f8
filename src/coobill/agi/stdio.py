"""`coobill-agi`: the gate as a local AGI script,
`AGI(coobill-agi,${CHANNEL(endpoint)},${EXTEN})`.

It decides nothing itself: it connects to the daemon's FastAGI gate as Asterisk would, sends
its own environment (as agi_network_script `authorize`, every argument it was given), and
relays the daemon's commands to Asterisk over stdin/stdout (pyst2's AGI) and the replies back.
The daemon sets the same channel variables either way. If the daemon is down, slow, or leaves
before all four COOBILL_ variables are set, the script sets DENY / error itself: fail closed,
exit 0.

Only the commands the gate sends are relayed (`RELAYED`): whatever answers on the gate's port
is not authenticated (FastAGI has none), and a command such as `EXEC System …` would run with
Asterisk's rights. Anything else is answered `510` on the daemon's side, never reaches
Asterisk, and the channel is denied.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from coobill.agi.protocol import (
    HANGUP,
    ProtocolError,
    decode_line,
    ends_usage_block,
    format_environment,
    parse_reply,
    reply_code,
    set_variable,
)
from coobill.errors import ConfigurationError
from coobill.services.commands import Reason

log = logging.getLogger("coobill.gate.stdio")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4573
CONNECT_TIMEOUT = 2.0  # as Asterisk's own MAX_AGI_CONNECT
CONVERSATION_TIMEOUT = 10.0
_MAX_LINE = 8192
_MAX_USAGE_LINES = 200

FAIL_CLOSED = (
    ("COOBILL_RESULT", "DENY"),
    ("COOBILL_REASON", "error"),
    ("COOBILL_LIMIT", ""),
    ("COOBILL_DIAL_OPTIONS", ""),
)


# Exactly the lines agi/gate.py gate_commands writes, with the values it can write.
RELAYED = re.compile(
    r'SET VARIABLE COOBILL_RESULT "(?:ALLOW|DENY)"'
    rf'|SET VARIABLE COOBILL_REASON "(?:{"|".join(re.escape(r.value) for r in Reason)})"'
    r'|SET VARIABLE COOBILL_LIMIT "[0-9]{0,10}"'
    r'|SET VARIABLE COOBILL_DIAL_OPTIONS "(?:L\([0-9]{1,13}\))?"'
    r'|SET VARIABLE COOBILL_LOW_BALANCE "1"'
    r'|EXEC Set "TIMEOUT\(absolute\)=[0-9]{1,10}"'
)
REFUSED = "510 Invalid or unknown command"  # what Asterisk says to a command it has not got


class AsteriskGone(Exception):
    """Asterisk closed our stdin: the AGI is over."""


class CommandRefused(ProtocolError):
    """The daemon's side sent a command the gate never sends: not relayed."""


class AgiStdio(Protocol):
    """What the relay uses of pyst2's `asterisk.agi.AGI`."""

    env: dict[str, str]
    stdin: Any

    def send_command(self, command: str, *args: object) -> None: ...


class Asterisk:
    """The channel on stdin/stdout: pyst2 writes the commands, replies are read raw.

    pyst2's own `get_result` cannot be used: it turns a reply into a dict (the relay needs the
    line), fails on a bare HANGUP line, and `execute` refuses to run after SIGHUP even though
    SET VARIABLE works on a dead channel.
    """

    def __init__(self, agi: AgiStdio) -> None:
        self._agi = agi

    def command(self, line: str) -> list[str]:
        """Run one command; every reply line, any HANGUP notice first, 520 usage included."""
        self._agi.send_command(line)
        lines = [self._read_line()]
        while lines[-1].strip() == HANGUP:
            lines.append(self._read_line())
        code, continues = reply_code(lines[-1])
        if code == 520 and continues:
            first = len(lines)
            while not ends_usage_block(lines[-1]):
                if len(lines) - first > _MAX_USAGE_LINES:
                    raise ProtocolError("520 usage block never ended")
                lines.append(self._read_line())
        return lines

    def _read_line(self) -> str:
        raw = self._agi.stdin.readline()
        if not raw:
            raise AsteriskGone("Asterisk closed stdin")
        return decode_line(raw) if isinstance(raw, bytes) else raw.rstrip("\r\n")


def daemon_address(environ: Mapping[str, str]) -> tuple[str, int]:
    """COOBILL_AGI__HOST / COOBILL_AGI__PORT, as the daemon's settings name them."""
    host = environ.get("COOBILL_AGI__HOST") or DEFAULT_HOST
    port_text = environ.get("COOBILL_AGI__PORT") or str(DEFAULT_PORT)
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise ConfigurationError(f"COOBILL_AGI__PORT is not a port: {port_text!r}",
                                 field="COOBILL_AGI__PORT")
    return host, port


def relay_environment(env: Mapping[str, str], args: Sequence[str]) -> list[tuple[str, str]]:
    """Our own AGI environment, dressed as a FastAGI request for the `authorize` route."""
    block = [("agi_network", "yes"), ("agi_network_script", "authorize")]
    block += [
        (name, value) for name, value in env.items()
        if name not in ("agi_network", "agi_network_script") and not name.startswith("agi_arg_")
    ]
    block += [(f"agi_arg_{index}", arg) for index, arg in enumerate(args, start=1)]
    return block


def relay(asterisk: Asterisk, address: tuple[str, int], environment: list[tuple[str, str]], *,
          connect_timeout: float = CONNECT_TIMEOUT,
          timeout: float = CONVERSATION_TIMEOUT) -> bool:
    """Carry one gate conversation between the daemon and Asterisk.

    True when the daemon set all four COOBILL_ variables and closed; errors propagate. A daemon
    cut off half-way may have left an ALLOW without its limit: that is not True.
    """
    deadline = time.monotonic() + timeout
    told: set[str] = set()
    with (
        socket.create_connection(address, timeout=connect_timeout) as daemon,
        daemon.makefile("rb") as commands,
    ):
        daemon.settimeout(max(deadline - time.monotonic(), 0.001))
        daemon.sendall(format_environment(environment))
        while True:
            daemon.settimeout(max(deadline - time.monotonic(), 0.001))
            raw = commands.readline(_MAX_LINE)
            if not raw:
                return told >= {name for name, _ in FAIL_CLOSED}
            if not raw.endswith(b"\n"):
                raise ProtocolError("the daemon sent a partial or overlong line")
            command = decode_line(raw)
            if not RELAYED.fullmatch(command):
                daemon.sendall(f"{REFUSED}\n".encode())
                log.warning("gate.relay_refused command=%r", command[:120])
                raise CommandRefused("the daemon's side sent a command the gate never sends")
            replies = asterisk.command(command)
            daemon.sendall("".join(f"{line}\n" for line in replies).encode("utf-8"))
            if command.startswith("SET VARIABLE ") and parse_reply(
                    r for r in replies if r.strip() != HANGUP).ok:
                told.add(command.split(" ", 3)[2])


def fail_closed(asterisk: Asterisk) -> None:
    """Set DENY / error on the channel ourselves; nothing more can be done if Asterisk left."""
    try:
        for name, value in FAIL_CLOSED:
            asterisk.command(set_variable(name, value))
    except (AsteriskGone, ProtocolError, OSError) as exc:
        log.error("gate.fail_closed_failed error=%s", type(exc).__name__)


def run(agi: AgiStdio, environ: Mapping[str, str], argv: Sequence[str] = (), *,
        connect_timeout: float = CONNECT_TIMEOUT, timeout: float = CONVERSATION_TIMEOUT) -> int:
    """One AGI invocation on an already-read pyst2 AGI; always 0 (the dialplan reads variables)."""
    asterisk = Asterisk(agi)
    # Every argument, so that the gate refuses a request with more than its two.
    args: list[str] = []
    while f"agi_arg_{len(args) + 1}" in agi.env:
        args.append(agi.env[f"agi_arg_{len(args) + 1}"])
    if not args:
        args = list(argv)
    try:
        told = relay(asterisk, daemon_address(environ), relay_environment(agi.env, args),
                     connect_timeout=connect_timeout, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - any failure to reach the daemon is logged and Asterisk goes on
        log.error("gate.relay_failed uniqueid=%s error=%s detail=%s",
                  agi.env.get("agi_uniqueid", "-"), type(exc).__name__, str(exc)[:120])
        told = False
    else:
        if not told:
            log.error("gate.relay_failed uniqueid=%s error=incomplete",
                      agi.env.get("agi_uniqueid", "-"))
    if not told:
        fail_closed(asterisk)
    return 0


def main() -> int:
    """The `coobill-agi` console script."""
    from asterisk.agi import AGI  # pyst2; imported here so the daemon never loads it

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="coobill-agi %(levelname)s %(message)s")
    # A caller name in Latin-1 must not kill the script before it can fail closed.
    for stream in (sys.stdin, sys.stdout):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")
    with open(os.devnull, "w") as quiet:  # pyst2 narrates every line on stderr
        try:
            agi = AGI(stdin=sys.stdin, stdout=sys.stdout, stderr=quiet)
        except Exception as exc:  # noqa: BLE001 - a script run without an AGI environment logs and exits 0
            log.error("gate.relay_failed error=%s detail=no_environment", type(exc).__name__)
            return 0
        return run(agi, os.environ, sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
