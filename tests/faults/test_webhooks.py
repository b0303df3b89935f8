"""The webhook outbox under faults, with a real HTTP receiver on loopback: down, then holding
a request while the daemon is killed with SIGKILL, then slow - every event is delivered at
least once, signed, and each extension's events first arrive in the order they were written.
And a receiver that never answers holds up neither the gate nor settlement. On SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from coobill.bootstrap import bootstrap
from coobill.config import Settings
from coobill.daemon.webhooks import WebhookSender
from coobill.services import balances, extensions, outbox
from coobill.services.context import BillingContext
from coobill.services.settings import change_settings
from coobill.storage import schema
from coobill.storage.db import create_engine
from tests.conftest import BACKENDS, PG_URL, FakeClock
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.integration.daemon_process import DaemonProcess
from tests.services.conftest import authorize, ended, make_extension, make_rate, settle

SECRET = "receiver-shared-secret-0123456789"
NUMBERS = ("100", "101", "102")


def hooked(url: str, database: str, **extra: object) -> Settings:
    return Settings(database={"url": database}, webhooks={
        "urls": [url], "secret": SECRET, "poll_seconds": 0.05, "max_backoff_seconds": 1,
        "timeout_seconds": 2, **extra})


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    server = WebhookReceiver(SECRET)
    await server.start()
    yield server
    server.release()
    await server.stop()


async def _admin(*statements: str) -> None:
    engine = create_async_engine(PG_URL)  # type: ignore[arg-type]
    async with engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))
    await engine.dispose()


@pytest.fixture(params=BACKENDS)
async def ledger_url(request: pytest.FixtureRequest, sqlite_template: Path,
                     tmp_path: Path) -> AsyncIterator[str]:
    """A migrated ledger's URL, as a daemon in another process is given it: on PostgreSQL a
    role of its own whose search_path is its own schema (the URL alone says where)."""
    if request.param == "sqlite":
        path = tmp_path / "ledger.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    name = "hook_" + uuid.uuid4().hex[:12]
    await _admin(f'CREATE ROLE "{name}" LOGIN', f'CREATE SCHEMA "{name}" AUTHORIZATION "{name}"',
                 f'ALTER ROLE "{name}" SET search_path = "{name}"')
    url = make_url(PG_URL).set(username=name).render_as_string(hide_password=False)  # type: ignore[arg-type]
    engine = create_engine(url)
    await schema.upgrade(engine)
    await engine.dispose()
    try:
        yield url
    finally:
        await _admin(f'DROP SCHEMA "{name}" CASCADE', f'DROP ROLE "{name}"')


@pytest.fixture
async def ledger_ctx(ledger_url: str, clock: FakeClock,
                     receiver: WebhookReceiver) -> AsyncIterator[BillingContext]:
    """The test's context on the ledger (SQLite, and PostgreSQL when configured)."""
    context = bootstrap(hooked(receiver.url, ledger_url))
    await change_settings(context, timezone="UTC")
    yield context
    await context.uow.dispose()


async def until_outbox(ctx: BillingContext, wanted: Callable[[list[outbox.EventView]], bool]
                       ) -> None:
    """Until the outbox's state (as the daemon process left it) is `wanted`."""
    async with asyncio.timeout(30):
        # The state is another process's, in the ledger: nothing here can signal it.
        while not wanted(await outbox.list_events(ctx, limit=1000)):  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def write_events(ctx: BillingContext, rounds: int) -> None:
    for n in range(rounds):
        for number in NUMBERS:
            await balances.recharge(ctx, [number], str(n + 1))
            await balances.adjust(ctx, number, "-0.5", note=f"round {n}")


def daemon_env(ctx: BillingContext, receiver: WebhookReceiver) -> dict[str, str]:
    return {**os.environ, "COOBILL_DATABASE__URL": str(ctx.config.database.url),
            "COOBILL_AGI__PORT": "0", "COOBILL_WEB__ENABLED": "false",
            "COOBILL_AMI__ENABLED": "false", "COOBILL_LOG__LEVEL": "INFO",
            "COOBILL_WEBHOOKS__URLS": json.dumps([receiver.url]),
            "COOBILL_WEBHOOKS__SECRET": SECRET, "COOBILL_WEBHOOKS__POLL_SECONDS": "0.05",
            "COOBILL_WEBHOOKS__MAX_BACKOFF_SECONDS": "1",
            "COOBILL_WEBHOOKS__TIMEOUT_SECONDS": "0.5"}


class TestEveryEventArrivesInOrderThroughFaults:
    async def test_receiver_down_daemon_killed_mid_delivery_then_slow(
        self, ledger_ctx: BillingContext, receiver: WebhookReceiver
    ) -> None:
        ctx = ledger_ctx
        for number in NUMBERS:
            await extensions.set_extension(ctx, number, extensions.ExtensionChanges(billing=True))
        await receiver.stop()  # down: its port refuses connections
        await write_events(ctx, 2)
        env = daemon_env(ctx, receiver)

        first = DaemonProcess(env)
        await first.start()
        # The receiver is down: each extension's oldest event is tried, and waits its backoff.
        await until_outbox(ctx, lambda found: sum(e.attempts > 0 for e in found) == 3)
        assert not receiver.received
        receiver.hold_next = True
        await receiver.start(receiver.port)
        await receiver.holding.wait()  # a request arrived and is not answered yet
        cut = receiver.received[-1]
        await first.kill()
        receiver.release()

        # Slow from now on: the sender's timeout is 0.5 s; the next two answers come after it
        # (the sender gives up and sends again), then each takes 0.2 s.
        receiver.delays = [0.8, 0.8]
        receiver.delay = 0.2
        await write_events(ctx, 1)  # more events while nothing sends
        written = sorted(await outbox.list_events(ctx, limit=1000), key=lambda e: e.id)
        second = DaemonProcess(env)
        await second.start()
        await write_events(ctx, 1)  # and while the second daemon sends
        written = sorted(await outbox.list_events(ctx, limit=1000), key=lambda e: e.id)
        await receiver.until(lambda: {r.key for r in receiver.answered} >= {e.key for e in written})
        await until_outbox(ctx, lambda found: all(e.state == "delivered" for e in found))
        await second.terminate()

        assert all(r.signed for r in receiver.received)
        assert not receiver.delays  # the slow answers were given
        assert cut.key in {r.key for r in receiver.answered}  # sent again after the kill
        assert [r.key for r in receiver.received].count(cut.key) >= 2
        for number in NUMBERS:
            in_order = [e.key for e in written if e.extension == number]
            assert receiver.first_answered_keys(number) == in_order
        for event in written:  # what arrived is what was written
            [got] = {json.dumps(r.event, sort_keys=True) for r in receiver.answered
                     if r.key == event.key}
            assert json.loads(got) == json.loads(event.payload)

    async def test_a_wrong_secret_is_what_the_receiver_would_catch(
        self, ledger_ctx: BillingContext, receiver: WebhookReceiver
    ) -> None:
        """The receiver's check is real: a sender keyed otherwise fails it."""
        ctx = ledger_ctx
        ctx.config = Settings(database={"url": str(ctx.config.database.url)}, webhooks={
            "urls": [receiver.url], "secret": "another-secret-entirely-0123",
            "poll_seconds": 0.05})
        await make_extension(ctx, "100", balance="1")
        sender = WebhookSender(ctx)
        sender.start()
        try:
            await receiver.until(lambda: bool(receiver.answered))
        finally:
            await sender.stop()
        assert not receiver.answered[0].signed


class TestWhatDeliveringCosts:
    async def test_a_group_of_events_is_marked_at_once_over_kept_connections(
        self, ledger_ctx: BillingContext, receiver: WebhookReceiver
    ) -> None:
        """40 events of 20 extensions: two rounds of 20, each sent 16 at a time over
        connections kept from one request to the next, each group marked in one
        transaction (on SQLite, where the sender shares the ledger thread with settlement,
        4 units of work and the hourly prune, not 40)."""
        ctx = ledger_ctx
        numbers = [str(200 + n) for n in range(20)]
        for number in numbers:
            await make_extension(ctx, number, balance="1")
            await balances.recharge(ctx, [number], "1")
        ledger = ctx.uow.ledger_thread
        units = ledger.units if ledger is not None else 0
        sender = WebhookSender(ctx)
        sender.start()
        try:
            await until_outbox(ctx, lambda found: all(e.state == "delivered" for e in found))
        finally:
            await sender.stop()
        assert len({r.key for r in receiver.answered}) == 40
        assert len(receiver.received) == 40  # each sent once
        assert receiver.connections <= 16
        if ledger is not None:  # PostgreSQL has no ledger thread to count on
            assert ledger.units - units == 4 + 1
        for number in numbers:
            [recharged, again] = [r for r in receiver.answered if r.extension == number]
            assert (recharged.event["data"]["amount"], again.event["data"]["amount"]) == (
                "1.0000", "1.0000")
            assert recharged.event["created_at"] <= again.event["created_at"]


    @pytest.mark.parametrize("behind", [True, False], ids=["loop-behind", "loop-keeping-up"])
    async def test_calls_settling_all_the_while_pace_the_sender_but_never_stop_it(
        self, ledger_ctx: BillingContext, receiver: WebhookReceiver, behind: bool
    ) -> None:
        """The daemon nudges the sender without a break (calls settling all the while): when
        the loop has more work than it keeps up with (here a task that takes it 5 ms at a
        time), the sender gives settlement the time first, and still delivers every event,
        in order; when the loop keeps up, it hardly ever pauses."""
        ctx = ledger_ctx
        for number in NUMBERS:
            await extensions.set_extension(ctx, number, extensions.ExtensionChanges(billing=True))
        await write_events(ctx, 2)
        written = sorted(await outbox.list_events(ctx, limit=1000), key=lambda e: e.id)
        sender = WebhookSender(ctx)
        calls_ended = asyncio.Event()

        async def settling() -> None:
            while not calls_ended.is_set():
                sender.nudge()
                if behind:  # settlement's own work, 5 ms of the loop at a time
                    until = time.perf_counter() + 0.005
                    while time.perf_counter() < until:
                        pass
                    await asyncio.sleep(0)
                else:
                    await asyncio.sleep(0.001)  # the load: a call settled each millisecond

        load = asyncio.create_task(settling())
        sender.start()
        try:
            await until_outbox(ctx, lambda found: all(e.state == "delivered" for e in found))
        finally:
            calls_ended.set()
            await load
            await sender.stop()
        for number in NUMBERS:
            in_order = [e.key for e in written if e.extension == number]
            assert receiver.first_answered_keys(number) == in_order
        if behind:
            assert sender.paced > 0
        else:  # a look may land on a moment the loop is held (a collection, a hop back)
            assert sender.looked > 0
            assert sender.paced * 4 <= sender.looked, (sender.paced, sender.looked)


class TestTheUrlsCredentialsStayHidden:
    async def test_a_failed_attempts_error_and_log_lines_mask_them(
        self, ledger_ctx: BillingContext, receiver: WebhookReceiver,
        caplog: pytest.LogCaptureFixture
    ) -> None:
        """The receiver answers 503: the error kept for the portal and the CLI, and every log
        line, name the URL without its password or its query's token."""
        ctx = ledger_ctx
        url = f"http://hooks:pa55-w0rd@127.0.0.1:{receiver.port}/hook?token=t0ken-value"
        ctx.config = hooked(url, str(ctx.config.database.url))
        receiver.status = 503
        await make_extension(ctx, "100", balance="1")
        sender = WebhookSender(ctx)
        caplog.set_level(logging.INFO, logger="coobill")
        sender.start()
        try:
            await until_outbox(ctx, lambda found: found[0].attempts >= 1)
        finally:
            await sender.stop()
        assert receiver.received  # it was sent, to the URL as configured
        [event] = await outbox.list_events(ctx)
        shown = f"http://hooks:***@127.0.0.1:{receiver.port}/hook?token=***"
        assert event.last_error == f"{shown}: HTTP 503"
        logged = caplog.text
        assert "webhooks.failed" in logged
        assert shown in logged
        assert "pa55-w0rd" not in logged
        assert "t0ken-value" not in logged


class TestAReceiverThatNeverAnswers:
    async def test_holds_up_neither_the_gate_nor_settlement(
        self, ledger_ctx: BillingContext, receiver: WebhookReceiver
    ) -> None:
        ctx = ledger_ctx
        ctx.config = hooked(receiver.url, str(ctx.config.database.url), timeout_seconds=300)
        receiver.hold_next = True
        await make_extension(ctx, "100", balance="10")
        await make_rate(ctx, "00")
        sender = WebhookSender(ctx)
        sender.start()
        try:
            await receiver.holding.wait()  # the recharge's event: held, unanswered
            verdict = await authorize(ctx, "c1")
            assert verdict.allowed
            done = await settle(ctx, ended("c1", billsec=61))
            assert done is not None
            assert done.debited
            await balances.recharge(ctx, ["100"], "5")
            found = await outbox.list_events(ctx)
            assert [e.kind for e in found] == ["recharge", "call.settled", "recharge"]
            assert all(e.state == "pending" for e in found)  # the first still on its way
            receiver.release()
            await receiver.until(lambda: len({r.key for r in receiver.answered}) == 3)
        finally:
            await sender.stop()

    async def test_a_redirect_is_not_followed(
        self, ledger_ctx: BillingContext, receiver: WebhookReceiver
    ) -> None:
        """A URL may point only where the operator configured it: a 3xx is a failed attempt."""
        ctx = ledger_ctx
        receiver.status = 302
        await make_extension(ctx, "100", balance="1")
        sender = WebhookSender(ctx)
        sender.start()
        try:
            await until_outbox(ctx, lambda found: found[0].attempts >= 1)
        finally:
            await sender.stop()
        [event] = await outbox.list_events(ctx)
        assert (event.state, event.last_error) == ("pending", f"{receiver.url}: HTTP 302")
        assert len(receiver.received) == 1
