"""The FastAGI gate: Asterisk asks `authorize`, the service layer decides, the channel is told.

A thin adapter on asyncio streams (panoramisk's fast_agi spins on EOF and desyncs on an inline
HANGUP, ASTERISK.md §5.1). Each connection is one conversation bounded by a deadline: read the
environment, call `authorize`, set COOBILL_RESULT / _REASON / _LIMIT / _DIAL_OPTIONS (and the
TIMEOUT(absolute) backstop), close. Faults end in a DENY whenever the channel can still be told;
the dialplan only dials on COOBILL_RESULT = ALLOW, so silence is a refusal too.

Connections are bounded (issue 14, finding 5): at most `max_connections` at once, and one that
has not sent its whole environment within `environment_timeout_seconds` is closed - Asterisk
writes it all as soon as it connects (launch_netscript then setup_env, res_agi.c:2233-2245,
2450-2494), so a slow one is not Asterisk. When every place is taken, the oldest connection
still waiting for its environment gives its place up; if none is waiting, the new one is closed
at once. Faults of connections that never named a call are logged at a bounded rate.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from coobill.agi.channel import AgiChannel, ChannelClosed, EnvironmentTooLarge, NoRequest
from coobill.agi.gate import (
    call_from_environment,
    decision_line,
    enforceable,
    gate_commands,
    key_values,
)
from coobill.agi.limits import RateLimiter
from coobill.agi.protocol import ProtocolError
from coobill.errors import BadRequest
from coobill.services.commands import AuthorizeCall, Reason, Verdict

log = logging.getLogger("coobill.gate")

Authorize = Callable[[AuthorizeCall], Awaitable[Verdict]]
OnDecision = Callable[[AuthorizeCall | None, Verdict, float], None]

# Share of the deadline `authorize` may use: a slow ledger still leaves time to tell the
# channel the on_error verdict instead of being cut off silently by the deadline.
_ASK_SHARE = 0.8
_MIN_STREAM_LIMIT = 8192  # res_agi.c AGI_BUF_LEN: no reply line is longer


@dataclass(frozen=True, slots=True)
class GateOptions:
    host: str = "127.0.0.1"
    port: int = 4573
    ring_allowance_seconds: int = 60
    deadline_seconds: float = 5.0
    max_env_bytes: int = 65536
    on_error: Literal["deny", "allow"] = "deny"
    max_connections: int = 256
    environment_timeout_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.on_error not in ("deny", "allow"):
            raise ValueError(f"on_error must be 'deny' or 'allow', not {self.on_error!r}")
        if (self.deadline_seconds <= 0 or self.max_env_bytes <= 0 or self.max_connections <= 0
                or self.environment_timeout_seconds <= 0):
            raise ValueError("deadline_seconds, max_env_bytes, max_connections and "
                             "environment_timeout_seconds must be positive")


class EnvironmentTimeout(Exception):
    """The peer sent no complete environment in time."""


class Evicted(Exception):
    """The connection gave its place up to a newer one while it still sent nothing."""


class GateServer:
    """Serves `authorize` over FastAGI until closed."""

    def __init__(
        self,
        authorize: Authorize,
        options: GateOptions | None = None,
        *,
        on_decision: OnDecision | None = None,
    ) -> None:
        self._authorize = authorize
        self._options = options or GateOptions()
        self._on_decision = on_decision
        self._server: asyncio.Server | None = None
        self._conversations: set[asyncio.Task[None]] = set()
        # Connections still waiting for their environment, oldest first (dicts keep order).
        self._waiting: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._evicted: set[asyncio.Task[None]] = set()
        self._faults = RateLimiter()
        self.refused = 0  # connections closed at once: every place taken by a conversation
        self.evictions = 0

    @property
    def connections(self) -> int:
        """The places taken right now (an evicted connection gave its place up)."""
        return len(self._conversations) - len(self._evicted)

    @property
    def options(self) -> GateOptions:
        return self._options

    @options.setter
    def options(self, options: GateOptions) -> None:
        """New options apply to the next conversation (SIGHUP); host and port need a restart."""
        self._options = options

    @property
    def port(self) -> int:
        """The bound port (the real one when the options asked for port 0)."""
        if self._server is None or not self._server.sockets:
            return self._options.port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._converse,
            self._options.host,
            self._options.port,
            limit=max(self._options.max_env_bytes, _MIN_STREAM_LIMIT),
        )
        log.info("gate.listening host=%s port=%d", self._options.host, self.port)

    async def close(self, drain_timeout: float = 5.0) -> None:
        """Stop accepting, let conversations finish for `drain_timeout`, then cancel the rest."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        deadline = time.monotonic() + drain_timeout
        # A conversation accepted just before close() may register a moment later: loop.
        while self._conversations and (remaining := deadline - time.monotonic()) > 0:
            await asyncio.wait(set(self._conversations), timeout=remaining)
        stragglers = set(self._conversations)
        for task in stragglers:
            task.cancel()
        if stragglers:
            await asyncio.gather(*stragglers, return_exceptions=True)
            log.warning("gate.closed cancelled=%d", len(stragglers))

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peer = _peer_of(writer)
        if not self._make_room():
            # Every place holds a live conversation. Closed without a word: COOBILL_RESULT
            # stays empty, which the dialplan's GotoIf treats as a denial.
            self.refused += 1
            writer.transport.abort()
            self._flood_fault(peer, "over_capacity", f"{self._options.max_connections} open")
            return
        self._conversations.add(task)
        channel = AgiChannel(reader, writer)
        try:
            async with asyncio.timeout(self._options.deadline_seconds):
                await self._serve(channel, peer, task)
        except TimeoutError:
            self._fault(channel, peer, "deadline", f"{self._options.deadline_seconds}s")
        except NoRequest:
            if task in self._evicted:
                self._flood_fault(peer, "evicted", "a newer connection took its place")
            else:
                self._flood_fault(peer, "no_request", "", level=logging.INFO)
        except EnvironmentTimeout:
            self._flood_fault(peer, "environment_timeout",
                              f"{self._options.environment_timeout_seconds}s")
        except ChannelClosed as exc:
            self._fault(channel, peer, "disconnected", _short(exc))
        except ProtocolError as exc:
            self._fault(channel, peer, "protocol", _short(exc))
        except Exception:
            log.exception("gate.fault %s", key_values(
                {"uniqueid": channel.uniqueid, "peer": peer, "fault": "internal"}))
        finally:
            self._waiting.pop(task, None)
            self._evicted.discard(task)
            await channel.close()
            self._conversations.discard(task)

    def _make_room(self) -> bool:
        """True when a new connection may be served, after evicting the oldest connection
        still waiting for its environment if that is what it takes."""
        if self.connections < self._options.max_connections:
            return True
        if not self._waiting:
            return False
        oldest = next(iter(self._waiting))
        # Its read ends with an EOF at once; its task closes it and gives the place back.
        self._waiting.pop(oldest).transport.abort()
        self._evicted.add(oldest)
        self.evictions += 1
        return True

    async def _serve(self, channel: AgiChannel, peer: str, task: asyncio.Task[None]) -> None:
        loop = asyncio.get_running_loop()
        opened = loop.time()
        try:
            self._waiting[task] = channel.writer
            try:
                async with asyncio.timeout(self._options.environment_timeout_seconds):
                    environment = await channel.read_environment(self._options.max_env_bytes)
            except TimeoutError:
                raise EnvironmentTimeout from None
            finally:
                self._waiting.pop(task, None)
            channel.uniqueid = environment.get("agi_uniqueid")
        except EnvironmentTooLarge as exc:
            # Out of step with the stream, so no reply can be read: write the DENY blind.
            # A real Asterisk runs these lines once it has written its environment.
            verdict = Verdict.deny(Reason.BAD_REQUEST)
            self._decided(None, verdict, opened, peer=peer, detail=_short(exc))
            for command in gate_commands(verdict, self._options.ring_allowance_seconds):
                await channel.send(command)
            return
        received = loop.time()
        call: AuthorizeCall | None
        try:
            call = call_from_environment(environment)
        except BadRequest as exc:
            call, verdict = None, Verdict.deny(Reason.BAD_REQUEST)
            self._decided(None, verdict, received, peer=peer, detail=_short(exc))
        else:
            asked = await self._ask(call, opened + self._options.deadline_seconds * _ASK_SHARE)
            verdict = enforceable(asked)
            extra = {"detail": "zero_limit"} if verdict is not asked else {}
            self._decided(call, verdict, received, **extra)
        await self._tell(channel, verdict)

    async def _ask(self, call: AuthorizeCall, answer_by: float) -> Verdict:
        """The service layer's verdict, or the on_error verdict when it fails or is too slow."""
        try:
            async with asyncio.timeout_at(answer_by):
                return await self._authorize(call)
        except TimeoutError:
            log.error("gate.authorize_failed uniqueid=%s error=timeout on_error=%s",
                      call.uniqueid, self._options.on_error)
        except Exception as exc:
            log.exception("gate.authorize_failed uniqueid=%s error=%s on_error=%s",
                          call.uniqueid, type(exc).__name__, self._options.on_error)
        if self._options.on_error == "allow":
            return Verdict.allow_unlimited(Reason.ERROR)
        return Verdict.deny(Reason.ERROR)

    async def _tell(self, channel: AgiChannel, verdict: Verdict) -> None:
        """Set the channel variables; a refused command turns an ALLOW into DENY error."""
        refused = await self._set_variables(channel, verdict)
        if refused is None or refused == 511 or not verdict.allowed:
            return  # told; or the channel is gone; or it holds no ALLOW to take back
        await self._set_variables(channel, Verdict.deny(Reason.ERROR))

    async def _set_variables(self, channel: AgiChannel, verdict: Verdict) -> int | None:
        """Send the gate's commands for `verdict`; the code of the first refusal, else None."""
        for command in gate_commands(verdict, self._options.ring_allowance_seconds):
            reply = await channel.command(command)
            if not reply.ok:
                log.warning("gate.fault %s", key_values({
                    "uniqueid": channel.uniqueid, "fault": f"reply_{reply.code}",
                    "command": command, "reply": reply.lines[0][:80],
                    "hung_up": channel.hung_up}))
                return reply.code
        return None

    def _decided(self, call: AuthorizeCall | None, verdict: Verdict, since: float,
                 **extra: object) -> None:
        latency = asyncio.get_running_loop().time() - since
        if log.isEnabledFor(logging.INFO):
            log.info(decision_line(call, verdict, **extra))
        if self._on_decision is None:
            return
        try:
            self._on_decision(call, verdict, latency)
        except Exception:
            log.exception("gate.on_decision_failed")


    def _fault(self, channel: AgiChannel, peer: str, fault: str, detail: str) -> None:
        if channel.uniqueid is None:  # no call named: a flood is as likely as Asterisk
            self._flood_fault(peer, fault, detail)
            return
        log.warning("gate.fault %s", key_values(
            {"uniqueid": channel.uniqueid, "peer": peer, "fault": fault, "detail": detail}))

    def _flood_fault(self, peer: str, fault: str, detail: str,
                     level: int = logging.WARNING) -> None:
        """A fault of a connection that named no call: one line per fault per 10 s."""
        suppressed = self._faults.admit(fault)
        if suppressed is None:
            return
        log.log(level, "gate.fault %s", key_values(
            {"uniqueid": None, "peer": peer, "fault": fault, "detail": detail,
             "suppressed": suppressed}))


def _peer_of(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


def _short(exc: BaseException) -> str:
    return str(exc)[:120] or type(exc).__name__
