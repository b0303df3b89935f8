"""The webhook sender: a supervised task of the daemon that delivers the outbox's events
(services/outbox.py says what they are and what is guaranteed).

Each round reads the due events - the oldest undelivered one of each extension - once, and
sends them MAX_CONCURRENT at a time; what each group's attempts came to is written in ONE
transaction (outbox.record), so the ledger - on SQLite one thread, shared with settlement -
sees a poll per round and a write per group, not one per event. A slow receiver holds up
only its own group, never the gate nor settlement: they never wait on this task. An event
answered 2xx by every configured URL is marked delivered; otherwise it is tried again after
a backoff, the URLs that took it skipped. Redirects are not followed: a URL may only point
where the operator configured it. Each attempt lasts at most webhooks.timeout_seconds
whatever the receiver does; its status is what counts, and a body is read only when it is
declared short (so that the connection carries the next request).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import httpx

from coobill.config import shown_url, without_url_secrets
from coobill.daemon.supervised import SupervisedTask
from coobill.services import outbox
from coobill.services.context import BillingContext

__all__ = ["WebhookSender"]

log = logging.getLogger("coobill.webhooks")

# Events read in one round (at most one per extension), and sent at once of them.
MAX_ROUND = 256
MAX_CONCURRENT = 16
# The sender's requests are Python work on the daemon's one event loop, and each stretch of
# it also keeps SQLite's ledger thread from its next turn (the GIL). So while calls are
# settling (the daemon nudged the sender during a group, or during a poll that found nothing
# due) faster than the loop keeps up with (work waited on the loop BEHIND_SECONDS or longer
# when the sender looked), the sender takes about BUSY_SHARE of the time: after a group (or
# such a poll) that took t seconds it waits t * (1/share - 1), at most BUSY_PAUSE_MAX_SECONDS
# (a group a second at least still goes out). The events wait in the ledger, safe, and go
# out at full speed once the burst is over. A loop that keeps up (a PBX's steady 150 calls/s
# is well within what settlement does) is not behind: the events go out as they are written.
BUSY_SHARE = 0.1
BUSY_PAUSE_MAX_SECONDS = 1.0
BEHIND_SECONDS = 0.001
# An answer's body is read (and thrown away) only when it says it is this short: httpx
# closes a connection whose answer was not read to its end, and a new connection per event
# costs the sender (and so the daemon's one event loop) more than the request itself.
MAX_ANSWER_BYTES = 4096
PRUNE_EVERY_SECONDS = 3600.0


class WebhookSender:
    def __init__(self, ctx: BillingContext, *, on_delivered: Callable[[], None] | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.ctx = ctx
        self._on_delivered = on_delivered
        self._transport = transport
        self._task = SupervisedTask("webhooks", self._run, log=log, died="webhooks.sender_died")
        self._wake = asyncio.Event()
        self._settling = False  # nudged since the current group began
        self._pruned_at: float | None = None
        self.looked = 0  # times it looked whether the loop was behind (tests read them)
        self.paced = 0  # pauses taken for settlement, of those

    def start(self) -> None:
        self._task.start()

    def nudge(self) -> None:
        """Look for events now (the daemon wrote some, settling calls)."""
        self._settling = True
        self._wake.set()

    async def stop(self) -> None:
        await self._task.stop()

    async def _run(self) -> None:
        hooks = self.ctx.config.webhooks
        timeout = httpx.Timeout(hooks.timeout_seconds)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False,
                                     transport=self._transport) as client:
            while True:
                try:
                    progressed = await self._round(client)
                    await self._prune()
                except Exception as exc:  # noqa: BLE001 - the ledger unreachable or locked: next round
                    log.warning("webhooks.round_failed error=%r", exc)
                    progressed = False
                if not progressed:
                    await self._pause(self.ctx.config.webhooks.poll_seconds)

    async def _pause(self, seconds: float) -> None:
        # asyncio.timeout, not wait_for: Python 3.11's wait_for returns the inner result when
        # it completes as the task is cancelled (cpython gh-86296) - a nudge landing as the
        # daemon stops swallowed the stop, and stop() waited for ever.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        self._wake.clear()

    async def _pace(self, began: float) -> None:
        """While calls are settling (nudged since `began`) and the loop is behind, give
        settlement the time first (BUSY_SHARE). Pacing, not waiting for something:
        settlement has the loop meanwhile."""
        if not self._settling:
            return
        loop = asyncio.get_running_loop()
        took = loop.time() - began
        asked = loop.time()
        self.looked += 1
        # A timer due now, not sleep(0): the loop runs due timers after the next poll's I/O
        # callbacks (asyncio's BaseEventLoop._run_once), so this comes back once the AMI data
        # already arrived is parsed - with a stream faster than settlement, milliseconds
        # later. (Not sleep(d > 0) either: epoll rounds its timeout up to a millisecond.)
        probe: asyncio.Future[None] = loop.create_future()
        loop.call_later(0, _resolve, probe)
        await probe
        if loop.time() - asked >= BEHIND_SECONDS:
            self.paced += 1
            await asyncio.sleep(min(took * (1 / BUSY_SHARE - 1), BUSY_PAUSE_MAX_SECONDS))

    async def _round(self, client: httpx.AsyncClient) -> bool:
        """Send the due events; True when at least one was delivered (look again at once)."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        self._settling = False
        events = await outbox.due(self.ctx, limit=MAX_ROUND)
        if not events:
            # Each settled call nudges: looking again at every one would be a poll per call.
            await self._pace(began)
            return False
        progressed = False
        for start in range(0, len(events), MAX_CONCURRENT):
            group = events[start:start + MAX_CONCURRENT]
            attempts = await asyncio.gather(*(self._attempt(client, e) for e in group))
            # Marked only once the receivers have answered: a daemon killed before this
            # sends the group again (at least once), and an extension's next event is read
            # only after this one is marked (in order).
            await outbox.record(self.ctx, attempts)
            for attempt in attempts:
                progressed = self._said(attempt) or progressed
            await self._pace(began)
            began = loop.time()
            self._settling = False
        return progressed

    async def _attempt(self, client: httpx.AsyncClient,
                       event: outbox.EventView) -> outbox.Attempt:
        hooks = self.ctx.config.webhooks
        took = [u for u in event.delivered_to if u in hooks.urls]
        errors = []
        for url in hooks.urls:
            if url in took:
                continue
            error = await self._post(client, url, event)
            if error is None:
                took.append(url)
            else:
                # Masked here, so the error kept (shown in the portal and by `coobill
                # webhooks list`) and the log line never carry the URL's credentials.
                errors.append(f"{shown_url(url)}: {without_url_secrets(error, [url])}")
        return outbox.Attempt(event, tuple(took), "; ".join(errors) if errors else None)

    def _said(self, attempt: outbox.Attempt) -> bool:
        """Log what an attempt (now recorded) came to; True when it was delivered."""
        event = attempt.event
        if attempt.error is None:
            log.info("webhooks.delivered id=%s key=%s kind=%s ext=%s attempts=%s", event.id,
                     event.key, event.kind, event.extension, event.attempts + 1)
            if self._on_delivered is not None:
                self._on_delivered()
            return True
        log.warning("webhooks.failed id=%s kind=%s ext=%s attempt=%s error=%r", event.id,
                    event.kind, event.extension, event.attempts + 1, attempt.error)
        return False

    async def _post(self, client: httpx.AsyncClient, url: str,
                    event: outbox.EventView) -> str | None:
        """Send one event to one URL; None when it answered 2xx, else what went wrong."""
        body = event.payload.encode()
        stamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": event.key,
            "X-Coobill-Event": event.kind,
            "X-Coobill-Timestamp": str(stamp),
            "X-Coobill-Signature": outbox.signature(self.ctx.config.webhooks.secret, stamp, body),
            "User-Agent": "coobill-webhooks",
        }
        seconds = self.ctx.config.webhooks.timeout_seconds
        request = client.build_request("POST", url, content=body, headers=headers)
        # httpx's timeout bounds each read, not the request: a receiver dripping its answer
        # a byte at a time would hold this attempt (and the round) for ever.
        deadline = asyncio.get_running_loop().time() + seconds
        try:
            async with asyncio.timeout_at(deadline):
                answer = await client.send(request, stream=True)
        except TimeoutError:
            return f"timed out after {seconds:g} s"
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:200]
        try:
            status = answer.status_code
            if _short(answer):
                # The status is in: a body that is late or cut off changes nothing.
                with contextlib.suppress(TimeoutError, httpx.HTTPError):
                    async with asyncio.timeout_at(deadline):
                        await answer.aread()
        finally:
            # An unread body (a long one: it would be kept in memory) closes the connection;
            # closing waits on nothing from the receiver.
            with contextlib.suppress(httpx.HTTPError):
                await answer.aclose()
        if 200 <= status < 300:
            return None
        return f"HTTP {status}"

    async def _prune(self) -> None:
        now = time.monotonic()
        if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY_SECONDS:
            self._pruned_at = now
            removed = await outbox.prune(self.ctx)
            if removed:
                log.info("webhooks.pruned delivered=%s", removed)


def _resolve(probe: asyncio.Future[None]) -> None:
    if not probe.done():  # not cancelled meanwhile (the sender stopping)
        probe.set_result(None)


def _short(answer: httpx.Response) -> bool:
    """Whether the answer says its body is at most MAX_ANSWER_BYTES (or has none)."""
    if answer.status_code in (204, 304):
        return True
    length = answer.headers.get("content-length", "")
    return length.isdigit() and int(length) <= MAX_ANSWER_BYTES
