"""The webhook sender: a supervised task of the daemon that delivers the outbox's events
(services/outbox.py says what they are and what is guaranteed).

Each round takes the due events - the oldest undelivered one of each extension - and sends
them concurrently (a slow receiver holds up only its own round, never the gate nor
settlement: they never wait on this task, and its marks are small transactions queued like
any other). An event answered 2xx by every configured URL is marked delivered; otherwise it
is tried again after a backoff, the URLs that took it skipped. Redirects are not followed: a
URL may only point where the operator configured it. Each attempt lasts at most
webhooks.timeout_seconds whatever the receiver does, and only its status is read.
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

# Events sent at once; the rest wait for the next round.
MAX_CONCURRENT = 16
PRUNE_EVERY_SECONDS = 3600.0


class WebhookSender:
    def __init__(self, ctx: BillingContext, *, on_delivered: Callable[[], None] | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.ctx = ctx
        self._on_delivered = on_delivered
        self._transport = transport
        self._task = SupervisedTask("webhooks", self._run, log=log, died="webhooks.sender_died")
        self._wake = asyncio.Event()
        self._pruned_at: float | None = None

    def start(self) -> None:
        self._task.start()

    def nudge(self) -> None:
        """Look for events now (the daemon wrote some)."""
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
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        self._wake.clear()

    async def _round(self, client: httpx.AsyncClient) -> bool:
        """Send the due events; True when at least one was delivered (look again at once)."""
        events = (await outbox.due(self.ctx))[:MAX_CONCURRENT]
        if not events:
            return False
        done = await asyncio.gather(*(self._deliver(client, e) for e in events))
        return any(done)

    async def _deliver(self, client: httpx.AsyncClient, event: outbox.EventView) -> bool:
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
        if not errors:
            await outbox.delivered(self.ctx, event, took)
            log.info("webhooks.delivered id=%s key=%s kind=%s ext=%s attempts=%s", event.id,
                     event.key, event.kind, event.extension, event.attempts + 1)
            if self._on_delivered is not None:
                self._on_delivered()
            return True
        await outbox.attempt_failed(self.ctx, event, took, "; ".join(errors))
        log.warning("webhooks.failed id=%s kind=%s ext=%s attempt=%s error=%r", event.id,
                    event.kind, event.extension, event.attempts + 1, "; ".join(errors))
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
        try:
            # httpx's timeout bounds each read, not the request: a receiver dripping its
            # answer a byte at a time would hold this attempt (and the round) for ever. And
            # only the status counts: the body is never read (an endless one would be kept
            # in memory), the connection closed instead.
            async with asyncio.timeout(seconds), client.stream(
                    "POST", url, content=body, headers=headers) as answer:
                status = answer.status_code
        except TimeoutError:
            return f"timed out after {seconds:g} s"
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:200]
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
