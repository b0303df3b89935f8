"""An attacker in a process of its own (its CPU is not the daemon's to account for):

    python -m tests.faults.attacker logins|slow|idle HOST PORT COUNT

It reads commands on stdin: `on` starts the attack and says `ready` on stdout once it is
under way; `off` stops it (every connection closed) and says `stopped`; at EOF it stops and
prints the HTTP statuses it got (logins) as JSON, then exits. On and off again, the test
measures the gate with and without the attack in turns, so the machine's other load falls on
both alike."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sys

import httpx


async def logins(host: str, port: int, count: int, stop: asyncio.Event,
                 statuses: list[int]) -> None:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    answered = len(statuses)
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}", limits=limits,
                                 timeout=30) as web:
        async def one_after_another(worker: int) -> None:
            for attempt in itertools.count():
                if stop.is_set():
                    return
                reply = await web.post("/api/login", json={
                    "name": f"nobody{worker}-{attempt}", "password": "wrong password"})
                statuses.append(reply.status_code)
                if len(statuses) == answered + count:
                    print("ready", flush=True)

        # each stops once its login in flight has its answer: the portal's work for the
        # attack is over when it says `stopped`
        await asyncio.gather(*(one_after_another(w) for w in range(count)))


async def slow(host: str, port: int, count: int, stop: asyncio.Event,
               statuses: list[int]) -> None:
    """Slowloris: headers that never end, a line now and then."""
    writers: list[asyncio.StreamWriter] = []
    try:
        for _ in range(count):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection(host, port)
                writer.write(b"GET /login HTTP/1.1\r\nHost: x\r\n")
                writers.append(writer)
        print("ready", flush=True)
        while not stop.is_set():
            for writer in writers:
                if not writer.is_closing():
                    writer.write(b"X-Slow: 1\r\n")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1)
    finally:
        for writer in writers:
            writer.close()


async def idle(host: str, port: int, count: int, stop: asyncio.Event,
               statuses: list[int]) -> None:
    """Connections to the gate that never send an environment, kept coming."""
    writers: list[asyncio.StreamWriter] = []
    try:
        for _ in range(count):
            with contextlib.suppress(OSError):
                writers.append((await asyncio.open_connection(host, port))[1])
        print("ready", flush=True)
        await stop.wait()
    finally:
        for writer in writers:
            writer.close()


ATTACKS = {"logins": logins, "slow": slow, "idle": idle}


async def main(kind: str, host: str, port: str, count: str) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    statuses: list[int] = []
    while (await reader.readline()).strip() == b"on":
        stop = asyncio.Event()
        attack = asyncio.create_task(ATTACKS[kind](host, int(port), int(count), stop, statuses))
        stopping = asyncio.create_task(reader.readline())
        await asyncio.wait({attack, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        await attack
        if (await stopping).strip() != b"off":
            break
        print("stopped", flush=True)
    print(json.dumps(statuses), flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
