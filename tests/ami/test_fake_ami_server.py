"""The fake AMI server answers as the real Asterisk did in ami-actions.txt, frame for frame."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import pytest

from tests.ami.conftest import WAIT
from tests.fakes.ami_server import TRACES, FakeAmiServer, Frame

StartServer = Callable[..., Awaitable[FakeAmiServer]]

# Actions the fake does not play (their answers are machine state, not protocol).
NOT_PLAYED = {"CoreStatus", "CoreSettings", "Status"}


@dataclass
class Step:
    action: Frame
    replies: list[Frame] = field(default_factory=list)
    then_closed: bool = False


@dataclass
class Exchange:
    title: str
    banner: str = ""
    steps: list[Step] = field(default_factory=list)


def headers_of(lines: Iterable[str]) -> tuple[tuple[str, str], ...]:
    pairs = (line.partition(":") for line in lines)
    return tuple((key.strip(), value.removeprefix(" ")) for key, _, value in pairs)


def recorded_exchanges() -> list[Exchange]:
    """ami-actions.txt cut into its sections: each action with the frames that answered it."""
    exchanges: list[Exchange] = []
    lines: list[str] = []
    direction = ""

    def close_frame() -> None:
        if not lines:
            return
        f = Frame(headers_of(lines))
        if direction == ">>>":
            exchanges[-1].steps.append(Step(f))
        else:
            exchanges[-1].steps[-1].replies.append(f)
        lines.clear()

    for raw in (TRACES / "ami-actions.txt").read_text().splitlines():
        if raw.startswith("### "):
            exchanges.append(Exchange(raw[4:]))
            continue
        mark, text = raw[:3], raw[4:]
        if text == "(connect)":
            continue
        if text == "(connection closed by Asterisk)":
            close_frame()
            exchanges[-1].steps[-1].then_closed = True
        elif text.startswith("Asterisk Call Manager/"):
            exchanges[-1].banner = text
        elif not text.strip():
            direction = mark
            close_frame()
        else:
            direction = mark
            lines.append(text)
    return exchanges


async def read_frame(reader: asyncio.StreamReader) -> Frame:
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    return Frame(headers_of(ln for ln in raw.decode().split("\r\n") if ln))


def comparable(f: Frame) -> list[tuple[str, str]]:
    """Headers in order; a Ping's Timestamp is the server's clock, so only its presence counts."""
    return [(k, "<time>" if k == "Timestamp" else v) for k, v in f.headers]


@pytest.mark.parametrize("exchange", recorded_exchanges(), ids=lambda e: e.title[:40])
async def test_the_fake_answers_like_the_recording(exchange: Exchange,
                                                   ami_server: StartServer) -> None:
    """Banner, replies (headers, order, values, ActionID echoed) and closing as recorded."""
    live = [f for step in exchange.steps for f in step.replies if f.event == "CoreShowChannel"]
    server = await ami_server(secret="lab-secret", live_channels=live)
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        banner = await asyncio.wait_for(reader.readuntil(b"\r\n"), WAIT)
        assert banner.decode().strip() == exchange.banner
        played = 0
        for step in exchange.steps:
            if step.action.get("Action") in NOT_PLAYED:
                continue
            writer.write(step.action.encode())
            for expected in step.replies:
                assert comparable(await read_frame(reader)) == comparable(expected)
            # Asterisk hangs up after a refused Login and a Logoff; the other recorded closes
            # are the end of the capture.
            if step.then_closed and step.action.get("Action") in ("Login", "Logoff"):
                assert await asyncio.wait_for(reader.read(), WAIT) == b""
            played += 1
        assert played >= 1
    finally:
        writer.close()
        await writer.wait_closed()
