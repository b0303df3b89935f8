"""A fake Asterisk manager (AMI) server on loopback, and a reader for the recorded traces.

The server speaks as Asterisk 23.4.1 does in tests/data/asterisk-traces (ami-actions.txt): the
banner, Login (a wrong secret gets `Authentication failed` and the socket closed), Ping,
CoreShowChannels (scripted live channels), PJSIPShowEndpoints / PJSIPShowEndpoint (recorded
responses from the pjsip lab), SIPpeers / SIPshowpeer (chan_sip, scripted; absent by default
as on the lab PBX), Logoff and the error for an unknown action - CRLF-framed, ActionID echoed.

The test drives it: `send_events` replays event frames (all at once or a slice at a time),
`drop` closes every session, `refuse`/`accept` stop and restart listening, `stall` stops
answering (a half-open connection). Nothing sleeps; tests await `next_login()` and futures.

Trace format: frames separated by blank lines, each preceded by a `#t=SECONDS` line (time
since capture start); lines starting `>>>` are what the recording client sent.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.fakes.traces import BASIC, PJSIP, TRACES, TRANSFER

__all__ = ["BASIC", "PJSIP", "TRACES", "TRANSFER"]  # re-exported for the tests that read traces

BANNER = "Asterisk Call Manager/12.0.0"
EOL = "\r\n"

Header = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Frame:
    """One AMI frame as recorded: ordered headers (a name may repeat) and when it arrived."""

    headers: tuple[Header, ...]
    t: float = 0.0
    sent: bool = False  # a `>>>` frame: the recording client's action

    def get(self, name: str, default: str = "") -> str:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return default

    @property
    def event(self) -> str:
        return self.get("Event")

    @property
    def action_id(self) -> str:
        return self.get("ActionID")

    def as_event(self) -> dict[str, str | list[str]]:
        """The frame as a plain mapping, a repeated header as a list (like panoramisk)."""
        out: dict[str, str | list[str]] = {}
        for key, value in self.headers:
            if key in out:
                previous = out[key]
                out[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
            else:
                out[key] = value
        return out

    def replace(self, **values: str) -> Frame:
        """A copy with headers replaced (by exact name) or appended."""
        headers = [(k, values.pop(k)) if k in values else (k, v) for k, v in self.headers]
        headers.extend(values.items())
        return Frame(tuple(headers), self.t, self.sent)

    def without(self, *names: str) -> Frame:
        drop = {n.lower() for n in names}
        return Frame(tuple(h for h in self.headers if h[0].lower() not in drop), self.t, self.sent)

    def encode(self) -> bytes:
        return "".join(f"{k}: {v}{EOL}" for k, v in self.headers).encode() + EOL.encode()


def frame(*headers: Header, **more: str) -> Frame:
    return Frame(tuple(headers) + tuple(more.items()))


def read_trace(path: Path) -> list[Frame]:
    """Every frame of an ami-all.txt, in order (the banner line is skipped)."""
    frames: list[Frame] = []
    t = 0.0
    lines: list[str] = []

    def close() -> None:
        body = [ln for ln in lines if ln.strip()]
        lines.clear()
        if not body or body == [BANNER]:
            return
        sent = body[0].startswith(">>>")
        if sent:
            body = [ln[3:].strip() for ln in body if ln[3:].strip()]
        headers = []
        for ln in body:
            key, sep, value = ln.partition(":")
            if sep:
                headers.append((key, value.removeprefix(" ")))
        frames.append(Frame(tuple(headers), t, sent))

    for raw in path.read_text().splitlines():
        if raw.startswith("#t="):
            close()
            t = float(raw[3:])
        elif raw == "":
            close()
        else:
            lines.append(raw)
    close()
    return frames


def event_frames(frames: Iterable[Frame]) -> list[Frame]:
    """The asynchronous events: received, with an Event header and no ActionID (an ActionID
    marks a reply to the recording client's own action, which Asterisk sends to it alone)."""
    return [f for f in frames if not f.sent and f.event and not f.action_id]


def with_timestamps(frames: Iterable[Frame], start: float) -> list[Frame]:
    """The frames as a PBX with manager.conf `timestampevents=yes` sends them: a `Timestamp`
    (epoch seconds) from each frame's capture time, `start` being the epoch of `#t=0`."""
    return [f.replace(Timestamp=f"{start + f.t:.6f}") for f in frames]


def reply_frames(frames: Iterable[Frame], action_id: str) -> list[Frame]:
    """The recorded reply (Response + list events) to the action with that ActionID."""
    return [f for f in frames if not f.sent and f.action_id == action_id]


def read_pjsip_callerids(conf: Path) -> dict[str, str]:
    """`[100](phone)` ... `callerid = "Alice" <100>` -> {"100": '"Alice" <100>'}."""
    found: dict[str, str] = {}
    section = ""
    for line in conf.read_text().splitlines():
        header = re.match(r"^\[([^\]]+)\]", line)
        if header:
            section = header.group(1)
            continue
        key, sep, value = line.partition("=")
        if sep and key.strip() == "callerid":
            found[section] = value.strip()
    return found


@dataclass
class EndpointBook:
    """What PJSIPShowEndpoints / PJSIPShowEndpoint answer, from the pjsip lab's recording."""

    listing: list[Frame]  # Response, EndpointList..., EndpointListComplete
    detail_template: list[Frame]  # Response, EndpointDetail..., EndpointDetailComplete for 100
    callerids: dict[str, str]

    @classmethod
    def from_pjsip_lab(cls) -> EndpointBook:
        frames = read_trace(PJSIP / "ami-all.txt")
        return cls(
            listing=reply_frames(frames, "endpoints"),
            detail_template=reply_frames(frames, "endpoint-100"),
            callerids=read_pjsip_callerids(PJSIP / "pjsip-used.conf"),
        )

    @classmethod
    def empty(cls) -> EndpointBook:
        return cls(listing=[], detail_template=[], callerids={})

    @property
    def names(self) -> list[str]:
        return [f.get("ObjectName") for f in self.listing if f.event == "EndpointList"]

    def detail(self, name: str) -> list[Frame]:
        """The recorded detail of endpoint 100, renamed for `name` (only 100 was recorded)."""
        out = []
        for f in self.detail_template:
            renamed = Frame(tuple(
                (k, name if v == "100" and k in ("ObjectName", "Aors", "EndpointName", "AOR")
                 else v)
                for k, v in f.headers
            ))
            if f.event == "EndpointDetail":
                renamed = renamed.replace(Callerid=self.callerids.get(name, "<unknown>"))
            out.append(renamed)
        return out


@dataclass
class SipPeer:
    name: str
    callerid: str = ""


@dataclass
class FakeSession:
    """One client connection."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    logged_in: bool = False
    events_on: bool = False
    stalled: bool = False
    actions: list[dict[str, str]] = field(default_factory=list)

    async def send(self, frames: Iterable[Frame]) -> None:
        if self.writer.is_closing():
            return
        self.writer.write(b"".join(f.encode() for f in frames))
        await self.writer.drain()

    def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()


class FakeAmiServer:
    """Listens on 127.0.0.1 on a free port; see the module docstring."""

    def __init__(
        self,
        *,
        username: str = "coobill",
        secret: str = "lab-secret",
        live_channels: Sequence[Frame] = (),
        endpoints: EndpointBook | None = None,
        sip_peers: Sequence[SipPeer] | None = None,
    ) -> None:
        self.username = username
        self.secret = secret
        self.live_channels = list(live_channels)
        self.endpoints = endpoints  # None: res_pjsip not loaded
        self.sip_peers = None if sip_peers is None else list(sip_peers)  # None: no chan_sip
        self.host = "127.0.0.1"
        self.port = 0
        self.sessions: list[FakeSession] = []
        self.logins = 0
        self.login_failures = 0
        self._server: asyncio.Server | None = None
        self._logged_in: asyncio.Queue[FakeSession] = asyncio.Queue()
        self._handlers: set[asyncio.Task[None]] = set()

    # -- lifecycle controlled by the test -------------------------------------------------

    async def start(self) -> FakeAmiServer:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        await self.refuse()
        self.drop()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=5)

    async def refuse(self) -> None:
        """Stop listening: new connections are refused (ECONNREFUSED), as with Asterisk down."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def accept(self) -> None:
        """Listen again on the same port."""
        if self._server is None:
            await self.start()

    def drop(self) -> None:
        """Close every client connection (Asterisk restarted, network cut)."""
        for session in self.sessions:
            session.close()

    def stall(self) -> None:
        """Keep the sockets open but answer nothing more (a half-open TCP connection)."""
        for session in self.sessions:
            session.stalled = True

    async def next_login(self, timeout: float = 5.0) -> FakeSession:
        """The next session that logs in successfully (already logged-in ones count once)."""
        return await asyncio.wait_for(self._logged_in.get(), timeout)

    async def send_events(self, frames: Iterable[Frame]) -> None:
        """Replay event frames to every logged-in session that asked for events."""
        frames = list(frames)
        for session in self.sessions:
            if session.logged_in and session.events_on and not session.stalled:
                await session.send(frames)

    # -- protocol -------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        session = FakeSession(reader, writer)
        self.sessions.append(session)
        try:
            writer.write((BANNER + EOL).encode())
            await writer.drain()
            while not writer.is_closing():
                action = await self._read_action(reader)
                if action is None:
                    break
                session.actions.append(action)
                if not session.stalled:
                    await self._answer(session, action)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            session.close()
            self._handlers.discard(task)

    @staticmethod
    async def _read_action(reader: asyncio.StreamReader) -> dict[str, str] | None:
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        action: dict[str, str] = {}
        for line in raw.decode().split(EOL):
            key, sep, value = line.partition(":")
            if sep:
                action[key.strip().lower()] = value.strip()
        return action

    async def _answer(self, session: FakeSession, action: Mapping[str, str]) -> None:
        name = action.get("action", "").lower()
        aid = action.get("actionid", "")
        if name == "login":
            await self._login(session, action, aid)
        elif not session.logged_in:
            await session.send([_error(aid, "Authentication Required")])
        elif name == "ping":
            await session.send([frame(("Response", "Success"), ("ActionID", aid),
                                      ("Ping", "Pong"), ("Timestamp", "1795361920.096374"))])
        elif name == "coreshowchannels":
            await session.send(_listing(aid, "Channels will follow", self.live_channels,
                                        "CoreShowChannelsComplete"))
        elif name == "pjsipshowendpoints" and self.endpoints is not None:
            await self._pjsip_endpoints(session, aid)
        elif name == "pjsipshowendpoint" and self.endpoints is not None:
            await self._pjsip_endpoint(session, aid, action.get("endpoint", ""))
        elif name == "sippeers" and self.sip_peers is not None:
            await self._sip_peers(session, aid)
        elif name == "sipshowpeer" and self.sip_peers is not None:
            await self._sip_peer(session, aid, action.get("peer", ""))
        elif name == "logoff":
            await session.send([frame(("Response", "Goodbye"), ("ActionID", aid),
                                      ("Message", "Thanks for all the fish."))])
            session.close()
        else:
            shown = action.get("action", "")
            await session.send([_error(
                aid, f"Invalid/unknown command: {shown}. "
                "Use Action: ListCommands to show available commands.")])

    async def _login(self, session: FakeSession, action: Mapping[str, str], aid: str) -> None:
        if action.get("username") != self.username or action.get("secret") != self.secret:
            self.login_failures += 1
            await session.send([_error(aid, "Authentication failed")])
            session.close()
            return
        session.logged_in = True
        session.events_on = action.get("events", "on").lower() != "off"
        self.logins += 1
        await session.send(
            [
                frame(
                    ("Response", "Success"),
                    ("ActionID", aid),
                    ("Message", "Authentication accepted"),
                )
            ]
        )
        if session.events_on:
            await session.send(
                [
                    frame(
                        ("Event", "FullyBooted"),
                        ("Privilege", "system,all"),
                        ("Uptime", "1"),
                        ("LastReload", "1"),
                        ("Status", "Fully Booted"),
                    )
                ]
            )
        self._logged_in.put_nowait(session)

    async def _pjsip_endpoints(self, session: FakeSession, aid: str) -> None:
        assert self.endpoints is not None
        if not self.endpoints.listing:
            await session.send([_error(aid, "No endpoints found")])
            return
        await session.send(f.replace(ActionID=aid) for f in self.endpoints.listing)

    async def _pjsip_endpoint(self, session: FakeSession, aid: str, name: str) -> None:
        assert self.endpoints is not None
        if name not in self.endpoints.names:
            await session.send([_error(aid, f"Unable to retrieve endpoint {name}")])
            return
        await session.send(f.replace(ActionID=aid) for f in self.endpoints.detail(name))

    async def _sip_peers(self, session: FakeSession, aid: str) -> None:
        # chan_sip's format (its manager docs); chan_sip is gone from Asterisk 21+, so there
        # is no recording of it.
        assert self.sip_peers is not None
        entries = [
            frame(
                ("Event", "PeerEntry"),
                ("Channeltype", "SIP"),
                ("ObjectName", p.name),
                ("ChanObjectType", "peer"),
                ("IPaddress", "-none-"),
                ("Status", "UNKNOWN"),
            )
            for p in self.sip_peers
        ]
        await session.send(
            _listing(aid, "Peer status list will follow", entries, "PeerlistComplete")
        )

    async def _sip_peer(self, session: FakeSession, aid: str, name: str) -> None:
        assert self.sip_peers is not None
        peer = next((p for p in self.sip_peers if p.name == name), None)
        if peer is None:
            await session.send([_error(aid, "Peer not found")])
            return
        await session.send(
            [
                frame(
                    ("Response", "Success"),
                    ("ActionID", aid),
                    ("Channeltype", "SIP"),
                    ("ObjectName", peer.name),
                    ("Callerid", peer.callerid),
                )
            ]
        )


def _error(aid: str, message: str) -> Frame:
    return frame(("Response", "Error"), ("ActionID", aid), ("Message", message))


def _tagged(item: Frame, aid: str) -> Frame:
    """A list item carrying the request's ActionID where Asterisk puts it (after Event)."""
    if item.action_id:
        return item.replace(ActionID=aid)
    return Frame((item.headers[0], ("ActionID", aid), *item.headers[1:]), item.t, item.sent)


def _listing(aid: str, message: str, items: Sequence[Frame], complete: str) -> list[Frame]:
    return [
        frame(
            ("Response", "Success"), ("ActionID", aid), ("EventList", "start"), ("Message", message)
        ),
        *(_tagged(item, aid) for item in items),
        frame(
            ("Event", complete),
            ("ActionID", aid),
            ("EventList", "Complete"),
            ("ListItems", str(len(items))),
        ),
    ]
