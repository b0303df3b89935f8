"""Following Asterisk's manager interface: a resilient connection feeding the call tracker.

Built on panoramisk 1.4's `Manager`, with its traps guarded (ASTERISK.md 5.2, 7.28-30):
- callbacks only put events on an asyncio.Queue; one supervised task feeds the tracker and
  awaits `on_call_ended` (panoramisk runs coroutine callbacks with a bare ensure_future);
- every action waits with a timeout, and also ends when the socket does (panoramisk has no
  action timeout, and an action cut off mid-listing never resolves);
- liveness is a real Ping whose answer is awaited (panoramisk's ping never checks one);
- a refused login is logged and counted (panoramisk only sets `authenticated = False`);
- the follower owns reconnecting, with backoff, one fresh `Manager` per session (panoramisk
  retries at a fixed interval and re-sends stale actions on FullyBooted);
- after every (re)connect, CoreShowChannels says which channels are live: events of a gap are
  lost, and `on_reconciled` lets the service settle what ended meanwhile;
- UTF-8 is decoded across TCP reads (panoramisk drops a character split between two).
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self, TypeAlias

from panoramisk import Manager, Message  # type: ignore[import-untyped]
from panoramisk.ami_protocol import AMIProtocol  # type: ignore[import-untyped]

from coobill.ami.calls import CallTracker, CdrMode, ChannelEnded, Received
from coobill.ami.endpoints import (
    DEFAULT_PHONE_PATTERN,
    Endpoint,
    PhoneRule,
    list_endpoints,
    phone_by_pattern,
)
from coobill.errors import (  # re-exported: their home is errors.py
    AmiConnectionLost,
    AmiError,
    AmiLoginRefused,
    AmiNotConnected,
    AmiTimeout,
)

__all__ = [
    "AmiConnection",
    "AmiConnectionLost",
    "AmiError",
    "AmiFollower",
    "AmiLoginRefused",
    "AmiNotConnected",
    "AmiTimeout",
]

log = logging.getLogger("coobill.ami")
# panoramisk's own chatter (one DEBUG line per frame), apart so it can be silenced.
_panoramisk_log = logging.getLogger("coobill.ami.panoramisk")

OnCallEnded = Callable[[ChannelEnded], Awaitable[None]]
OnReconciled = Callable[[set[str]], Awaitable[None]]
AmiReply: TypeAlias = "Message | list[Message]"

# The events the tracker reads; the rest are not even queued.
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


@dataclass(frozen=True, slots=True)
class _Reconcile:
    live: frozenset[str]
    during_session: bool = False  # a periodic check, not the one after a (re)connect
    asked_tick: float = 0.0  # monotonic: when the listing was asked for


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


@dataclass(frozen=True, slots=True)
class _Event:
    """An event, stamped as it was read off the socket (panoramisk parses in data_received):
    a busy consumer neither stretches nor shrinks anyone's talk time."""

    message: Message
    received: Received


@dataclass(frozen=True, slots=True)
class _Authorized:
    """The gate allowed a channel (its hold committed): queued before the channel is told,
    so before any event of the Dial it allows."""

    uniqueid: str
    token: str
    tick: float
    channel: str = ""
    extension: str = ""


@dataclass(frozen=True, slots=True)
class _Expected:
    """Live channels holding funds this daemon did not see allowed (they outlived a
    restart): uniqueid -> the tokens of their holds."""

    holds: tuple[tuple[str, tuple[str, ...]], ...]


_SESSION_START = _Marker("session-start")
_SESSION_END = _Marker("session-end")
_TICK = _Marker("tick")
_FLUSH = _Marker("flush")
_QueueItem: TypeAlias = "_Event | _Reconcile | _Authorized | _Expected | _Marker"


class AmiFollower:
    """Follows calls on one Asterisk; hands each ended dialling channel to `on_call_ended`."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        on_call_ended: OnCallEnded,
        on_reconciled: OnReconciled,
        on_live_check: OnReconciled | None = None,
        live_check_seconds: float = 0.0,
        tracker: CallTracker | None = None,
        cdr_events: CdrMode = "auto",
        cdr_grace_seconds: float = 5.0,
        clock: Callable[[], float] = time.time,
        phone_pattern: str = DEFAULT_PHONE_PATTERN,
        reconnect_seconds: float = 2.0,
        max_reconnect_seconds: float = 60.0,
        ping_interval: float = 10.0,
        ping_timeout: float = 5.0,
        action_timeout: float = 10.0,
        tick_seconds: float = 1.0,
        events: str = "on",
    ) -> None:
        self.host, self.port, self.username = host, port, username
        self._secret = secret
        self._on_call_ended = on_call_ended
        self._on_reconciled = on_reconciled
        # Every `live_check_seconds` of a session (0: never), the live channels are listed
        # again and `on_live_check` gets them with the calls still being followed: holds whose
        # channel is in neither had their end lost without the connection dropping (Asterisk
        # drops events for a manager client that falls behind).
        self._on_live_check = on_live_check
        self._live_check_seconds = live_check_seconds
        self.tracker = tracker or CallTracker(
            clock=clock, cdr_events=cdr_events, cdr_grace_seconds=cdr_grace_seconds
        )
        self.is_phone: PhoneRule = phone_by_pattern(phone_pattern)
        self._reconnect_seconds = reconnect_seconds
        self._max_reconnect_seconds = max_reconnect_seconds
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._action_timeout = action_timeout
        self._tick_seconds = tick_seconds
        self._events = events
        self.reconnects = 0  # sessions re-established after the first
        self.login_failures = 0
        self.sessions = 0
        self._connection: AmiConnection | None = None
        self._in_flight: ChannelEnded | None = None
        self._queue: asyncio.Queue[_QueueItem] = asyncio.Queue()
        self._tasks: dict[str, asyncio.Task[None]] = {}

    @property
    def connected(self) -> bool:
        return self._connection is not None

    async def start(self) -> None:
        """Start following; returns at once (Asterisk may well be down: it keeps trying)."""
        if self._tasks:
            raise RuntimeError("AmiFollower already started")
        self._tasks = {
            "consumer": asyncio.create_task(self._consume(), name="ami-consumer"),
            "connection": asyncio.create_task(self._supervise(), name="ami-connection"),
            "ticker": asyncio.create_task(self._tick(), name="ami-ticker"),
        }

    async def stop(self, drain_seconds: float = 10.0) -> None:
        """Disconnect, settle what hung up awaiting its Cdr, and hand over every queued
        event within `drain_seconds`."""
        if not self._tasks:
            return
        for name in ("connection", "ticker"):
            await _cancel(self._tasks[name])
        self._queue.put_nowait(_FLUSH)  # no Cdr will come once we are gone
        try:
            await asyncio.wait_for(self._queue.join(), drain_seconds)
        except TimeoutError:
            in_flight = self._in_flight.uniqueid if self._in_flight is not None else ""
            log.error("ami.drain_timeout undelivered=%d in_flight=%s seconds=%s",
                      self._queue.qsize(), in_flight, drain_seconds)
        await _cancel(self._tasks["consumer"])
        self._tasks = {}
        log.info("ami.stopped host=%s port=%s", self.host, self.port)

    def _arrived(self, message: Message) -> None:
        self._queue.put_nowait(_Event(message, self.tracker.received()))

    def authorized(self, uniqueid: str, token: str, channel: str = "",
                   extension: str = "") -> None:
        """The gate allowed `uniqueid` (`channel`, paid by `extension`) under the hold
        `token`; call it once the hold has committed and before the channel is told (so before
        its Dial's first event)."""
        self._queue.put_nowait(_Authorized(uniqueid, token, self.tracker.tick(), channel,
                                           extension))

    def paid_by(self, uniqueid: str) -> str | None:
        """For the gate: who pays for a call this channel is the dialled party of
        (CallTracker.paid_by)."""
        return self.tracker.paid_by(uniqueid)

    def expect(self, holds: dict[str, list[str]]) -> None:
        """Follow these live channels, holding funds of authorizations this daemon did not
        see (uniqueid -> their holds' tokens), to their end."""
        if holds:
            self._queue.put_nowait(_Expected(tuple((u, tuple(t)) for u, t in holds.items())))

    def earlier_authorizations(self, uniqueid: str) -> tuple[tuple[str, int], ...]:
        """For the gate: the channel's earlier authorizations and the most talk time each
        can have been used for (CallTracker.earlier)."""
        return self.tracker.earlier(uniqueid)

    async def list_endpoints(self) -> list[Endpoint]:
        """The PBX's endpoints over the live session (AmiNotConnected when there is none)."""
        if self._connection is None:
            raise AmiNotConnected(f"not connected to AMI at {self.host}:{self.port}")
        return await list_endpoints(self._connection.request, is_phone=self.is_phone)

    async def live_uniqueids(self) -> set[str]:
        """The uniqueids of the channels up right now, asked over the live session."""
        if self._connection is None:
            raise AmiNotConnected(f"not connected to AMI at {self.host}:{self.port}")
        return await self._connection.live_uniqueids()

    # -- the connection, supervised -------------------------------------------------------

    async def _supervise(self) -> None:
        delay = self._reconnect_seconds
        while True:
            logged_in_before = self.sessions
            try:
                await self._session()
            except AmiLoginRefused as exc:
                self.login_failures += 1
                log.error("ami.login_failed host=%s port=%s username=%s message=%r failures=%d",
                          self.host, self.port, self.username, str(exc), self.login_failures)
            except (OSError, AmiError) as exc:
                log.warning("ami.disconnected host=%s port=%s reason=%r",
                            self.host, self.port, str(exc) or type(exc).__name__)
            except Exception:
                log.exception("ami.session_failed host=%s port=%s", self.host, self.port)
            if self.sessions > logged_in_before:
                delay = self._reconnect_seconds  # it worked for a while: start over
            log.info("ami.reconnecting host=%s port=%s in_seconds=%.3g", self.host, self.port,
                     delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_reconnect_seconds)

    async def _session(self) -> None:
        connection = AmiConnection(
            self.host, self.port, self.username, self._secret, events=self._events,
            timeout=self._action_timeout, on_event=self._arrived,
        )
        # Queued before Login: no event of this session can overtake it.
        self._queue.put_nowait(_SESSION_START)
        try:
            await connection.open()
            self.sessions += 1
            if self.sessions > 1:
                self.reconnects += 1
            self._connection = connection
            log.info("ami.connected host=%s port=%s session=%d reconnects=%d",
                     self.host, self.port, self.sessions, self.reconnects)
            live = await connection.live_uniqueids()
            self._queue.put_nowait(_Reconcile(frozenset(live)))
            await self._watch(connection)
        finally:
            self._connection = None
            connection.close()
            self._queue.put_nowait(_SESSION_END)

    async def _watch(self, connection: AmiConnection) -> None:
        """Returns (raises) when the session is over: socket closed, or a Ping unanswered.
        Meanwhile it lists the live channels every `live_check_seconds`, if asked to."""
        loop = asyncio.get_running_loop()
        checking = self._on_live_check is not None and self._live_check_seconds > 0
        next_check = loop.time() + self._live_check_seconds
        next_ping = loop.time() + self._ping_interval
        while True:
            due = min(next_ping, next_check) if checking else next_ping
            done, _ = await asyncio.wait({connection.lost}, timeout=max(due - loop.time(), 0))
            if done:
                raise AmiConnectionLost("connection closed by the server")
            if checking and loop.time() >= next_check:
                asked = self.tracker.tick()
                live = await connection.live_uniqueids()
                self._queue.put_nowait(_Reconcile(frozenset(live), during_session=True,
                                                  asked_tick=asked))
                next_check = loop.time() + self._live_check_seconds
            if loop.time() >= next_ping:
                try:
                    await connection.ping(self._ping_timeout)
                except AmiTimeout:
                    raise AmiTimeout(f"no Pong within {self._ping_timeout}s") from None
                next_ping = loop.time() + self._ping_interval

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._tick_seconds)
            self._queue.put_nowait(_TICK)

    # -- the one consumer -----------------------------------------------------------------

    async def _consume(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._handle(item)
            except Exception:
                log.exception("ami.event_failed item=%r", _describe(item))
            finally:
                self._queue.task_done()

    async def _handle(self, item: _QueueItem) -> None:
        tracker = self.tracker
        if isinstance(item, _Event):
            ended = tracker.feed(item.message, item.received)
        elif isinstance(item, _Authorized):
            tracker.authorized(item.uniqueid, item.token, item.tick, item.channel,
                               item.extension)
            return
        elif isinstance(item, _Expected):
            for uniqueid, tokens in item.holds:
                tracker.expect(uniqueid, list(tokens))
            return
        elif isinstance(item, _Reconcile) and item.during_session:
            # Followed channels the listing lacks lost their end; the others count as live:
            # their settlement is on its way.
            assert self._on_live_check is not None
            for call in tracker.lost(item.live, item.asked_tick):
                log.warning("ami.call_end_lost uniqueid=%s", call.uniqueid)
                await self._hand_over(call)
            await self._on_live_check(set(item.live) | tracker.following())
            return
        elif isinstance(item, _Reconcile):
            tracker.connected()
            lost = tracker.reconcile(item.live)
            for uniqueid in lost:
                log.warning("ami.call_lost_in_gap uniqueid=%s", uniqueid)
            log.info("ami.reconciled live=%d lost=%d", len(item.live), len(lost))
            await self._on_reconciled(set(item.live) | tracker.following())
            return
        elif item is _SESSION_START:
            tracker.begin_session()
            return
        elif item is _SESSION_END:
            tracker.disconnected()
            return
        elif item is _TICK:
            ended = tracker.expire()
        else:
            assert item is _FLUSH
            ended = tracker.flush()
        for call in ended:
            await self._hand_over(call)

    async def _hand_over(self, call: ChannelEnded) -> None:
        s = call.settle
        log.info("ami.call_ended uniqueid=%s ext=%s dials=%d answered=%d leftover=%s",
                 s.uniqueid, s.caller_extension, len(s.dials),
                 sum(d.disposition == "ANSWERED" for d in s.dials), s.leftover)
        self._in_flight = call
        try:
            await self._on_call_ended(call)
        except Exception:
            # Logged with every field, so an operator can settle it by hand.
            log.exception("ami.settle_failed uniqueid=%s call=%r", s.uniqueid, s)
        finally:
            self._in_flight = None


async def _cancel(task: asyncio.Task[None]) -> None:
    """Cancel a task of ours and wait for it, without swallowing our own cancellation."""
    task.cancel()
    await asyncio.wait({task})


def _describe(item: _QueueItem) -> str:
    if isinstance(item, _Event):
        return f"{item.message.get('Event', '?')} {item.message.get('Uniqueid', '')}".strip()
    return repr(item)
