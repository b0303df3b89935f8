"""Following Asterisk's manager interface: sessions one after another, feeding the call tracker.

The session itself (protocol, login, actions with timeouts) is ami/session.py; here:
- callbacks only put events on an asyncio.Queue; one supervised task feeds the tracker and
  awaits `on_call_ended` (panoramisk runs coroutine callbacks with a bare ensure_future);
- the follower owns reconnecting, with backoff, one fresh session each time; a session ends
  when its socket does or a Ping goes unanswered;
- after every (re)connect, CoreShowChannels says which channels are live: events of a gap are
  lost, and `on_reconciled` lets the service settle what ended meanwhile;
- its tasks are supervised: one that dies says so in the log, with what it was handling.

Its settings come in one `FollowerOptions`, built from the `[ami]` section in one place
(`FollowerOptions.from_config`), and what it has done is counted in `FollowerProgress` (both in
ami/options.py).

Length: a little past ~350 lines because the queue's items, the tasks that put them there and
the consumer that reads them are one protocol: the order in which they are queued is what
makes an authorization come before its Dial and a session's start before its events.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import TypeAlias

from panoramisk import Message  # type: ignore[import-untyped]

from coobill.ami.calls import CallTracker, ChannelEnded, Received
from coobill.ami.endpoints import (
    Endpoint,
    PhoneRule,
    list_endpoints,
    phone_by_pattern,
)
from coobill.ami.options import FollowerOptions, FollowerProgress
from coobill.ami.session import (
    AmiConnection,
    AmiConnectionLost,
    AmiError,
    AmiLoginRefused,
    AmiNotConnected,
    AmiTimeout,
)

__all__ = ["AmiFollower", "FollowerOptions", "FollowerProgress"]

log = logging.getLogger("coobill.ami")

OnCallEnded = Callable[[ChannelEnded], Awaitable[None]]
OnReconciled = Callable[[set[str]], Awaitable[None]]


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
    # Of those, gone channels whose transferred leg talks on: uniqueid -> the legs' names.
    legs: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Of those, the channels whose legs are gone too (their rows may still be on their way).
    gone: frozenset[str] = frozenset()


_SESSION_START = _Marker("session-start")
_SESSION_END = _Marker("session-end")
_TICK = _Marker("tick")
_FLUSH = _Marker("flush")
_QueueItem: TypeAlias = "_Event | _Reconcile | _Authorized | _Expected | _Marker"


class AmiFollower:
    """Follows calls on one Asterisk; hands each ended dialling channel to `on_call_ended`."""

    def __init__(
        self,
        options: FollowerOptions,
        *,
        on_call_ended: OnCallEnded,
        on_reconciled: OnReconciled,
        on_live_check: OnReconciled | None = None,
        tracker: CallTracker | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.options = options
        self._on_call_ended = on_call_ended
        self._on_reconciled = on_reconciled
        self._on_live_check = on_live_check
        self.tracker = tracker or CallTracker(
            clock=clock, cdr_events=options.cdr_events,
            cdr_grace_seconds=options.cdr_grace_seconds,
        )
        self.is_phone: PhoneRule = phone_by_pattern(options.phone_pattern)
        self.progress = FollowerProgress()
        self._connection: AmiConnection | None = None
        self._in_flight: ChannelEnded | None = None
        self._queue: asyncio.Queue[_QueueItem] = asyncio.Queue()
        self._tasks: dict[str, asyncio.Task[None]] = {}

    @property
    def host(self) -> str:
        return self.options.host

    @property
    def port(self) -> int:
        return self.options.port

    @property
    def sessions(self) -> int:
        return self.progress.sessions.count

    @property
    def reconnects(self) -> int:
        """Sessions re-established after the first."""
        return max(self.sessions - 1, 0)

    @property
    def login_failures(self) -> int:
        return self.progress.login_failures.count

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
        for task in self._tasks.values():
            task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """Each task runs until stop() cancels it: one that ends otherwise is said, with the
        call it was handing over (nothing is followed from here on until a restart)."""
        if task.cancelled():
            return
        in_flight = self._in_flight.uniqueid if self._in_flight is not None else ""
        log.error("ami.task_failed task=%s uniqueid=%s error=%r", task.get_name(), in_flight,
                  task.exception())

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

    def expect(self, holds: dict[str, list[str]],
               legs: dict[str, list[str]] | None = None,
               gone: Collection[str] = ()) -> None:
        """Follow these live channels, holding funds of authorizations this daemon did not
        see (uniqueid -> their holds' tokens), to their end; those in `legs` are gone, and
        end when the legs named there (their transferred external party) hang up - or, for
        those in `gone`, whose legs the PBX no longer lists, are settled once the Cdr grace
        has passed (CallTracker.expect)."""
        if holds:
            self._queue.put_nowait(_Expected(tuple((u, tuple(t)) for u, t in holds.items()),
                                             tuple((u, tuple(n)) for u, n in (legs or {}).items()),
                                             frozenset(gone)))

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
        delay = self.options.reconnect_seconds
        while True:
            logged_in_before = self.sessions
            try:
                await self._session()
            except AmiLoginRefused as exc:
                self.progress.login_failures.add()
                log.error("ami.login_failed host=%s port=%s username=%s message=%r failures=%d",
                          self.host, self.port, self.options.username, str(exc),
                          self.login_failures)
            except (OSError, AmiError) as exc:
                log.warning("ami.disconnected host=%s port=%s reason=%r", self.host, self.port,
                            str(exc) or type(exc).__name__)
            except Exception:
                log.exception("ami.session_failed host=%s port=%s", self.host, self.port)
            if self.sessions > logged_in_before:
                delay = self.options.reconnect_seconds  # it worked for a while: start over
            log.info("ami.reconnecting host=%s port=%s in_seconds=%.3g", self.host, self.port,
                     delay)
            self.progress.retries.add()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.options.max_reconnect_seconds)

    async def _session(self) -> None:
        o = self.options
        connection = AmiConnection(o.host, o.port, o.username, o.secret, events=o.events,
                                   timeout=o.action_timeout, on_event=self._arrived)
        # Queued before Login: no event of this session can overtake it.
        self._queue.put_nowait(_SESSION_START)
        try:
            await connection.open()
            self._connection = connection
            self.progress.sessions.add()
            log.info("ami.connected host=%s port=%s session=%d reconnects=%d", self.host,
                     self.port, self.sessions, self.reconnects)
            live = await connection.live_uniqueids()
            self._queue.put_nowait(_Reconcile(frozenset(live)))
            await self._watch(connection)
        finally:
            was_up = self._connection is not None
            self._connection = None
            connection.close()
            self._queue.put_nowait(_SESSION_END)
            if was_up:
                self.progress.lost.add()

    async def _watch(self, connection: AmiConnection) -> None:
        """Returns (raises) when the session is over: socket closed, or a Ping unanswered.
        Meanwhile it lists the live channels every `live_check_seconds`, if asked to."""
        loop = asyncio.get_running_loop()
        checking = self._on_live_check is not None and self.options.live_check_seconds > 0
        next_check = loop.time() + self.options.live_check_seconds
        next_ping = loop.time() + self.options.ping_interval
        while True:
            due = min(next_ping, next_check) if checking else next_ping
            done, _ = await asyncio.wait({connection.lost}, timeout=max(due - loop.time(), 0))
            if done:
                raise AmiConnectionLost("connection closed by the server")
            if checking and loop.time() >= next_check:
                asked = self.tracker.tick()
                live = await connection.live_uniqueids()
                self._queue.put_nowait(
                    _Reconcile(frozenset(live), during_session=True, asked_tick=asked)
                )
                next_check = loop.time() + self.options.live_check_seconds
            if loop.time() >= next_ping:
                try:
                    await connection.ping(self.options.ping_timeout)
                except AmiTimeout:
                    raise AmiTimeout(f"no Pong within {self.options.ping_timeout}s") from None
                next_ping = loop.time() + self.options.ping_interval

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.options.tick_seconds)
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
            tracker.authorized(item.uniqueid, item.token, item.tick, item.channel, item.extension)
            return
        elif isinstance(item, _Expected):
            legs = dict(item.legs)
            for uniqueid, tokens in item.holds:
                tracker.expect(uniqueid, list(tokens), legs.get(uniqueid, ()),
                               gone=uniqueid in item.gone)
            return
        elif isinstance(item, _Reconcile):
            await self._reconcile(item)
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

    async def _reconcile(self, item: _Reconcile) -> None:
        tracker = self.tracker
        if item.during_session:
            # Followed channels the listing lacks lost their end; the others count as live:
            # their settlement is on its way.
            assert self._on_live_check is not None
            for call in tracker.lost(item.live, item.asked_tick):
                log.warning("ami.call_end_lost uniqueid=%s", call.uniqueid)
                await self._hand_over(call)
            await self._on_live_check(set(item.live) | tracker.following())
            return
        tracker.connected()
        lost = tracker.reconcile(item.live)
        for uniqueid in lost:
            log.warning("ami.call_lost_in_gap uniqueid=%s", uniqueid)
        log.info("ami.reconciled live=%d lost=%d", len(item.live), len(lost))
        await self._on_reconciled(set(item.live) | tracker.following())

    async def _hand_over(self, call: ChannelEnded) -> None:
        s = call.settle
        log.info(
            "ami.call_ended uniqueid=%s ext=%s dials=%d answered=%d leftover=%s",
            s.uniqueid,
            s.caller_extension,
            len(s.dials),
            sum(d.disposition == "ANSWERED" for d in s.dials),
            s.leftover,
        )
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
