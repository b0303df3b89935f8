"""A bounded flood of portal visitors, for bench_mixed --portal:

    python -m bench.portal_flood PORT USER PASSWORD

LOGINS callers log in with wrong passwords, one attempt after another (each costs the portal
an argon2 check, or a 429/503 once its throttle or its hashing queue says no), and VIEWERS
logged-in users view pages one after another. Says `ready` once both are under way; when
stdin closes, prints `requests seconds errors` (an error: a 5xx, or no answer) and exits."""

from __future__ import annotations

import asyncio
import itertools
import sys
import time

import httpx

LOGINS = 10
VIEWERS = 10
PAGES = ("/extensions", "/calls", "/recharges", "/rates", "/statistics")


async def flood(port: int, user: str, password: str) -> tuple[int, float, int]:
    base = f"http://127.0.0.1:{port}"
    counts = {"requests": 0, "errors": 0}
    stop = asyncio.Event()

    def count(status: int | None) -> None:
        counts["requests"] += 1
        if status is None or status >= 500:
            counts["errors"] += 1

    async def bad_logins(worker: int, web: httpx.AsyncClient) -> None:
        for attempt in itertools.count():
            if stop.is_set():
                return
            try:
                reply = await web.post("/api/login", json={
                    "name": f"visitor{worker}-{attempt}", "password": "wrong password"})
                count(reply.status_code)
            except httpx.HTTPError:
                count(None)

    async def views(web: httpx.AsyncClient) -> None:
        for page in itertools.cycle(PAGES):
            if stop.is_set():
                return
            try:
                count((await web.get(page)).status_code)
            except httpx.HTTPError:
                count(None)

    async def until_stdin_closes() -> None:
        reader = asyncio.StreamReader()
        await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        await reader.read()
        stop.set()

    async with httpx.AsyncClient(base_url=base, timeout=30) as anonymous:
        viewers = []
        for _ in range(VIEWERS):
            web = httpx.AsyncClient(base_url=base, timeout=30)
            reply = await web.post("/api/login", json={"name": user, "password": password})
            reply.raise_for_status()
            web.headers["X-CSRF-Token"] = reply.json()["csrf_token"]
            viewers.append(web)
        print("ready", flush=True)
        start = time.perf_counter()
        await asyncio.gather(until_stdin_closes(), *(views(w) for w in viewers),
                             *(bad_logins(n, anonymous) for n in range(LOGINS)))
        seconds = time.perf_counter() - start
        for web in viewers:
            await web.aclose()
    return counts["requests"], seconds, counts["errors"]


if __name__ == "__main__":
    requests, seconds, errors = asyncio.run(flood(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
    print(requests, f"{seconds:.3f}", errors, flush=True)
