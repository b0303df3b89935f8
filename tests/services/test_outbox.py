"""The webhook outbox: each change writes its event in its own transaction (so a change that
is refused leaves none), the daemon sees each extension's oldest event only, and a billing
user lists and retries them. On SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest

from coobill.errors import BadRequest
from coobill.services import balances, extensions, outbox, reservations
from coobill.services.context import BillingContext
from tests.conftest import FakeClock, settings_for
from tests.services.conftest import authorize, ended, make_extension, make_rate, settle

URL = "http://127.0.0.1:9/hook"


def with_webhooks(ctx: BillingContext, **extra: object) -> None:
    ctx.config = settings_for(str(ctx.config.database.url), webhooks={
        "urls": [URL], "secret": "s" * 32, **extra})


async def events(ctx: BillingContext) -> list[tuple[str, str, dict]]:  # type: ignore[type-arg]
    found = await outbox.list_events(ctx)
    return [(e.kind, e.extension, json.loads(e.payload)) for e in reversed(found)]


@pytest.fixture
async def hooked(ctx: BillingContext) -> BillingContext:
    with_webhooks(ctx)
    return ctx


class TestEventsAreWrittenWithTheirChange:
    async def test_a_recharge_and_an_adjustment_each_write_their_event(
        self, hooked: BillingContext
    ) -> None:
        await make_extension(hooked, "100", balance="10")
        await balances.adjust(hooked, "100", "-2.5", who="ann", note="typo")
        written = await events(hooked)
        assert [(k, e) for k, e, _ in written] == [("recharge", "100"), ("adjustment", "100")]
        recharge, adjustment = written[0][2], written[1][2]
        assert recharge["data"]["amount"] == "10.0000"
        assert recharge["data"]["balance_after"] == "10.0000"
        assert adjustment["data"]["amount"] == "-2.5000"
        assert adjustment["data"]["balance_after"] == "7.5000"
        assert adjustment["type"] == "adjustment"
        assert len(adjustment["id"]) == 32

    async def test_a_refused_recharge_writes_no_event(self, hooked: BillingContext) -> None:
        await make_extension(hooked, "100")
        with pytest.raises(BadRequest):
            await balances.recharge(hooked, ["100"], "2000000")
        assert await events(hooked) == []

    async def test_a_settled_call_writes_call_settled_with_its_cost(
        self, hooked: BillingContext
    ) -> None:
        await make_extension(hooked, "100", balance="10")
        await make_rate(hooked, "00")
        await authorize(hooked, "c1")
        await settle(hooked, ended("c1", billsec=61))
        await settle(hooked, ended("c1", billsec=61))  # a repeat: nothing twice
        settled = [d for k, _, d in await events(hooked) if k == "call.settled"]
        assert len(settled) == 1
        assert settled[0]["data"]["cost"] == "0.1500"
        assert settled[0]["data"]["balance_after"] == "9.8500"
        assert settled[0]["data"]["uniqueid"] == "c1"

    async def test_a_flagged_hold_writes_hold_flagged(self, hooked: BillingContext) -> None:
        await make_extension(hooked, "100", balance="30")
        await make_rate(hooked, "00")
        await authorize(hooked, "c1")
        done = await reservations.reconcile(hooked, set(), asked_at=None, find_cdr=None,
                                            still_live=_nothing_live)
        assert done.flagged == ["c1"]
        flagged = [(e, d) for k, e, d in await events(hooked) if k == "hold.flagged"]
        assert [(e, d["data"]["uniqueid"]) for e, d in flagged] == [("100", "c1")]

    async def test_locking_an_extension_writes_extension_locked_once(
        self, hooked: BillingContext
    ) -> None:
        await make_extension(hooked, "100")
        await extensions.set_extension(hooked, "100", extensions.ExtensionChanges(locked=True))
        await extensions.set_extension(hooked, "100", extensions.ExtensionChanges(locked=True))
        await extensions.edit_extensions(hooked, ["100"], extensions.ExtensionChanges(name="x"))
        locked = [e for k, e, _ in await events(hooked) if k == "extension.locked"]
        assert locked == ["100"]

    async def test_without_urls_nothing_is_written(self, ctx: BillingContext) -> None:
        await make_extension(ctx, "100", balance="10")
        assert await events(ctx) == []

    async def test_only_the_chosen_kinds_are_written(self, ctx: BillingContext) -> None:
        with_webhooks(ctx, events=["adjustment"])
        await make_extension(ctx, "100", balance="10")
        await balances.adjust(ctx, "100", "1")
        assert [k for k, _, _ in await events(ctx)] == ["adjustment"]


async def _nothing_live() -> set[str]:
    return set()


class TestWhatIsDue:
    async def test_only_each_extensions_oldest_event_is_due(self, hooked: BillingContext) -> None:
        for number in ("100", "101"):
            await make_extension(hooked, number)
        for number in ("100", "100", "101", "100"):
            await balances.recharge(hooked, [number], "1")
        due = await outbox.due(hooked)
        all_ = sorted(await outbox.list_events(hooked), key=lambda e: e.id)
        assert [e.id for e in due] == [all_[0].id, all_[2].id]
        await outbox.delivered(hooked, due[0], [URL])
        assert [e.id for e in await outbox.due(hooked)] == [all_[1].id, all_[2].id]

    async def test_a_failed_attempt_waits_its_backoff_and_holds_back_the_later_ones(
        self, hooked: BillingContext, clock: FakeClock
    ) -> None:
        await make_extension(hooked, "100")
        await balances.recharge(hooked, ["100"], "1")
        await balances.recharge(hooked, ["100"], "2")
        first = (await outbox.due(hooked))[0]
        await outbox.attempt_failed(hooked, first, [], "HTTP 500")
        assert await outbox.due(hooked) == []
        clock.advance(1.01)
        again = await outbox.due(hooked)
        assert [(e.id, e.attempts, e.last_error) for e in again] == [(first.id, 1, "HTTP 500")]
        await outbox.attempt_failed(hooked, again[0], [], "HTTP 500")
        clock.advance(1.5)
        assert await outbox.due(hooked) == []  # 2 s after the second failure
        clock.advance(0.6)
        assert [e.id for e in await outbox.due(hooked)] == [first.id]

    async def test_after_max_attempts_it_is_failed_until_retried(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        with_webhooks(ctx, max_attempts=2)
        await make_extension(ctx, "100")
        await balances.recharge(ctx, ["100"], "1")
        await balances.recharge(ctx, ["100"], "2")
        for _ in range(2):
            event = (await outbox.due(ctx))[0]
            await outbox.attempt_failed(ctx, event, [], "refused")
            clock.advance(10)
        assert await outbox.due(ctx) == []
        assert await outbox.state_counts(ctx) == {"pending": 1, "delivered": 0, "failed": 1}
        assert [e.id for e in await outbox.list_events(ctx, state="failed")] == [event.id]
        assert await outbox.retry(ctx) == [event.id]
        assert [(e.id, e.attempts) for e in await outbox.due(ctx)] == [(event.id, 0)]

    async def test_a_url_that_took_it_is_kept_across_attempts(
        self, hooked: BillingContext
    ) -> None:
        await make_extension(hooked, "100", balance="1")
        event = (await outbox.due(hooked))[0]
        await outbox.attempt_failed(hooked, event, [URL], "other: down")
        [listed] = await outbox.list_events(hooked)
        assert listed.delivered_to == (URL,)

    async def test_delivered_events_are_pruned_after_their_days(
        self, hooked: BillingContext, clock: FakeClock
    ) -> None:
        await make_extension(hooked, "100", balance="1")
        await outbox.delivered(hooked, (await outbox.due(hooked))[0], [URL])
        assert await outbox.prune(hooked) == 0
        clock.advance(timedelta(days=31).total_seconds())
        assert await outbox.prune(hooked) == 1
        assert await outbox.list_events(hooked) == []


class TestRetry:
    async def test_an_unknown_or_delivered_event_is_refused_and_nothing_changes(
        self, hooked: BillingContext
    ) -> None:
        await make_extension(hooked, "100", balance="1")
        await balances.recharge(hooked, ["100"], "1")
        first, second = sorted(await outbox.list_events(hooked), key=lambda e: e.id)
        await outbox.delivered(hooked, first, [URL])
        with pytest.raises(BadRequest, match="no such webhook event"):
            await outbox.retry(hooked, [second.id, 999])
        with pytest.raises(BadRequest, match="delivered already"):
            await outbox.retry(hooked, [first.id])
        assert await outbox.retry(hooked, [second.id]) == [second.id]

    async def test_a_bad_state_filter_is_refused(self, hooked: BillingContext) -> None:
        with pytest.raises(BadRequest, match="state: must be one of"):
            await outbox.list_events(hooked, state="lost")


def test_the_signature_is_hmac_sha256_of_the_timestamp_and_body() -> None:
    import hashlib
    import hmac

    body = b'{"a":1}'
    expected = hmac.new(b"k" * 16, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert outbox.signature("k" * 16, 1700000000, body) == "sha256=" + expected
    assert dataclasses.is_dataclass(outbox.EventView)
