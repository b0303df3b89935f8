"""One AMI session: panoramisk's protocol with its traps guarded, the login, the actions.

Built on panoramisk 1.4's `Manager` (ASTERISK.md 5.2, 7.28-30):
- every action waits with a timeout, and also ends when the socket does (panoramisk has no
  action timeout, and an action cut off mid-listing never resolves);
- liveness is a real Ping whose answer is awaited (panoramisk's ping never checks one);
- a refused login raises AmiLoginRefused (panoramisk only sets `authenticated = False`);
- a session never reconnects by itself: one fresh `Manager` per session, and the follower
  (ami/follower.py) decides when to try again (panoramisk retries at a fixed interval and
  re-sends stale actions on FullyBooted);
- UTF-8 is decoded across TCP reads (panoramisk drops a character split between two), and
  frames nobody reads are dropped before panoramisk parses them.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
from collections.abc import Callable, Mapping
from typing import Any, Self, TypeAlias

from panoramisk import Manager, Message  # type: ignore[import-untyped]
from panoramisk.ami_protocol import AMIProtocol  # type: ignore[import-untyped]

from coobill.ami.endpoints import Endpoint, list_endpoints, phone_by_pattern
from coobill.config import AmiConfig
from coobill.errors import (  # their home is errors.py; re-exported here
    AmiConnectionLost,
    AmiError,
    AmiLoginRefused,
    AmiNotConnected,
    AmiTimeout,
)

__all__ = [
    "TRACKED_EVENTS",
    "AmiConnection",
    "AmiConnectionLost",
    "AmiError",
    "AmiLoginRefused",
    "AmiNotConnected",
    "AmiReply",
    "AmiTimeout",
    "pbx_endpoints",
]

# panoramisk's own chatter (one DEBUG line per frame), apart so it can be silenced.
_panoramisk_log = logging.getLogger("coobill.ami.panoramisk")

AmiReply: TypeAlias = "Message | list[Message]"

# The events the call tracker reads; the rest are not even queued.
TRACKED_EVENTS = ("DialBegin", "DialEnd", "BridgeEnter", "Hangup", "Cdr")


class _Protocol(AMIProtocol):  # type: ignore[misc]
    """panoramisk's protocol, fed only whole UTF-8 characters and only the frames we read.

    A busy PBX sends many events the tracker never looks at (Newstate, DialState, BridgeLeave,
    VarSet for users with read=dialplan...). Frames are cut here, and an event that is neither
    tracked nor the answer to one of our actions (no ActionID) is dropped before panoramisk
    parses it into a Message: most of the cost of a frame is that parse.
    """

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._utf8 = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending = ""

    def data_received(self, data: bytes) -> None:
        text = self._pending + self._utf8.decode(data)
        frames = text.split("\r\n\r\n")
        self._pending = frames.pop()
        wanted = [f for f in frames if _wanted(f)]
        if wanted:
            super().data_received("".join(f + "\r\n\r\n" for f in wanted).encode("utf-8"))


_KEPT_EVENTS = frozenset(e.lower() for e in (*TRACKED_EVENTS, "Shutdown", "FullyBooted"))


def _wanted(frame: str) -> bool:
    head = frame.lstrip()
    if not head.startswith("Event:"):
        return True  # a Response, the banner
    name = head[6:head.find("\r\n") if "\r\n" in head else None].strip().lower()
    return name in _KEPT_EVENTS or "\nActionID:" in frame


class _SessionManager(Manager):  # type: ignore[misc]
    """One panoramisk Manager per connection; it neither pings blindly nor reconnects."""

    pinger: asyncio.TimerHandle | None

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        # panoramisk re-sends unanswered actions when FullyBooted comes; ours time out and the
        # session is replaced instead.
        self.callbacks.clear()
        self.patterns.clear()
        self.ready: asyncio.Future[None] = self.loop.create_future()
        self.lost: asyncio.Future[None] = self.loop.create_future()

    def connection_made(self, f: asyncio.Future[Any]) -> None:
        if f.cancelled():
            return
        error = f.exception()
        if error is not None:
            if not self.ready.done():
                self.ready.set_exception(error)
            return
        if self.lost.done():  # closed by us while connecting: do not keep the socket
            transport, _ = f.result()
            transport.close()
            return
        super().connection_made(f)
        if not self.ready.done():
            self.ready.set_result(None)

    def ping(self) -> None:
        """Replaced by AmiConnection.ping, which waits for the Pong."""

    def connection_lost(self, exc: Any) -> None:
        self._connected = False
        if self.pinger:
            self.pinger.cancel()
            self.pinger = None
        if not self.lost.done():
            self.lost.set_result(None)


class AmiConnection:
    """One logged-in AMI session; it ends with its socket and never retries by itself.

    `async with AmiConnection(...) as ami: await ami.request({...})` serves one-shot jobs (the
    extension sync); AmiFollower runs one after another.
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        events: str = "off",
        timeout: float = 10.0,
        on_event: Callable[[Message], None] | None = None,
        event_patterns: tuple[str, ...] = TRACKED_EVENTS,
    ) -> None:
        self.host, self.port, self.username = host, port, username
        self._secret = secret
        self._events = events
        self.timeout = timeout
        self._on_event = on_event
        self._event_patterns = event_patterns
        self._manager: _SessionManager | None = None

    async def open(self) -> None:
        """Connect and log in; raises OSError, AmiTimeout or AmiLoginRefused."""
        manager = self._manager = _SessionManager(
            host=self.host, port=self.port, loop=asyncio.get_running_loop(),
            protocol_factory=_Protocol, encoding="utf8", log=_panoramisk_log,
        )
        if self._on_event is not None:
            for pattern in self._event_patterns:
                manager.register_event(pattern, self._dispatch)
        connecting = manager.connect()
        try:
            try:
                await asyncio.wait_for(manager.ready, self.timeout)
            except TimeoutError:
                raise AmiTimeout(f"no TCP connection to {self.host}:{self.port} "
                                 f"within {self.timeout}s") from None
            reply = await self.request({"Action": "Login", "Username": self.username,
                                        "Secret": self._secret, "Events": self._events})
            if not _first(reply).success:
                raise AmiLoginRefused(_first(reply).message or "login refused")
        except BaseException:
            connecting.cancel()
            self.close()
            raise

    @property
    def lost(self) -> asyncio.Future[None]:
        return self._require().lost

    async def request(self, action: Mapping[str, str], timeout: float | None = None) -> AmiReply:
        """Send an action; its answer (a list for an EventList), or AmiTimeout /
        AmiConnectionLost - never a wait without end."""
        manager = self._require()
        name = action.get("Action", "?")
        if manager.lost.done():
            raise AmiConnectionLost(f"{name}: connection already closed")
        answer = manager.send_action(dict(action))
        timeout = self.timeout if timeout is None else timeout
        try:
            done, _ = await asyncio.wait({answer, manager.lost}, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not answer.done():
                answer.cancel()
        if answer in done and not answer.cancelled():
            result: AmiReply = answer.result()
            return result
        if manager.lost.done():
            raise AmiConnectionLost(f"{name}: connection lost before the answer")
        raise AmiTimeout(f"{name}: no answer within {timeout}s")

    async def ping(self, timeout: float) -> None:
        reply = await self.request({"Action": "Ping"}, timeout)
        if not _first(reply).success:
            raise AmiError(f"Ping refused: {_first(reply).message}")

    async def live_uniqueids(self) -> set[str]:
        """The uniqueids, and the names, of every channel up right now (CoreShowChannels):
        a name holds a '/', a uniqueid never does."""
        reply = await self.request({"Action": "CoreShowChannels"})
        items = reply if isinstance(reply, list) else [reply]
        if not items or not items[0].success:
            raise AmiError(f"CoreShowChannels refused: {_first(reply).message}")
        listed = [m for m in items if m.get("Event") == "CoreShowChannel"]
        return {m["Uniqueid"] for m in listed if m.get("Uniqueid")} | {
            m["Channel"] for m in listed if m.get("Channel")}

    def close(self) -> None:
        if self._manager is not None:
            self._manager.close()
            if not self._manager.ready.done():
                self._manager.ready.cancel()
            if not self._manager.lost.done():
                self._manager.lost.set_result(None)

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def _require(self) -> _SessionManager:
        if self._manager is None:
            raise AmiNotConnected("AMI connection not opened")
        return self._manager

    def _dispatch(self, manager: Manager, message: Message) -> None:
        # Synchronous on purpose: panoramisk would fire-and-forget a coroutine.
        assert self._on_event is not None
        self._on_event(message)


def _first(reply: AmiReply) -> Message:
    return reply[0] if isinstance(reply, list) else reply


async def pbx_endpoints(ami: AmiConfig) -> list[Endpoint]:
    """The PBX's endpoints, over a session of their own (`coobill extension sync`)."""
    async with AmiConnection(ami.host, ami.port, ami.username, ami.secret) as connection:
        is_phone = phone_by_pattern(ami.phone_pattern)
        return await list_endpoints(connection.request, is_phone=is_phone)
