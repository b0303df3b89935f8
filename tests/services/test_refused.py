"""Refused calls: every DENY the gate's callback is given becomes a record (time in the PBX's
zone, extension, number, reason, latency) written in batches after the answer; the queue is
bounded, so a storm never makes the gate wait; retention keeps the table small. On SQLite and
PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from coobill.config import RecordsConfig
from coobill.services import reports
from coobill.services.commands import AuthorizeCall, Reason, Verdict
from coobill.services.context import BillingContext
from coobill.services.refused import RefusedLog, list_refused
from coobill.services.settings import change_settings
from tests.conftest import FakeClock
from tests.services.conftest import START, authorize, ended, make_extension, make_rate, settle


def call(uniqueid: str, extension: str = "100", number: str = "0012345678") -> AuthorizeCall:
    return AuthorizeCall(uniqueid, extension, number, channel="PJSIP/100-1")


def keeping(ctx: BillingContext, **records: int) -> BillingContext:
    config = RecordsConfig(**{**ctx.config.records.model_dump(), **records})
    return replace(ctx, config=ctx.config.model_copy(update={"records": config}))


DENY = Verdict.deny(Reason.CAP_DAILY)


class TestEveryDenyIsRecorded:
    async def test_a_deny_is_written_with_its_time_reason_and_latency(
        self, ctx: BillingContext
    ) -> None:
        await change_settings(ctx, timezone="Asia/Shanghai")
        log = RefusedLog(ctx)
        log.note(call("u1"), DENY, 0.0012345)
        log.note(call("u2"), Verdict(allowed=True, reason=Reason.OK), 0.001)  # not a refusal
        log.note(None, Verdict.deny(Reason.BAD_REQUEST), 0.0001)  # named no call
        assert await log.flush() == 2
        records, total = await list_refused(ctx)
        assert total == 2
        bad, first = records
        assert (first.extension, first.number, first.reason, first.uniqueid) == (
            "100", "0012345678", "cap_daily", "u1")
        assert str(first.latency_ms) == "1.234"
        assert first.at == START.replace(hour=22)  # 14:25 UTC is 22:25 in Shanghai
        assert (bad.extension, bad.reason) == ("", "bad_request")

    async def test_the_writer_task_writes_what_the_gate_refused(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, balance="0")
        await make_rate(ctx)
        log = RefusedLog(ctx, batch_delay_seconds=0.01)
        log.start()
        try:
            verdicts = [await authorize(ctx, f"u{i}") for i in range(3)]
            for i, verdict in enumerate(verdicts):
                log.note(call(f"u{i}"), verdict, 0.002)
            while log.written < 3:  # the state waited on: what the writer has written
                await _yield()
        finally:
            await log.stop()
        records, total = await list_refused(ctx)
        assert total == 3
        assert {r.reason for r in records} == {"no_funds"}

    async def test_a_storm_past_the_queue_is_counted_and_dropped_not_waited_for(
        self, ctx: BillingContext
    ) -> None:
        log = RefusedLog(keeping(ctx, refused_queue=100, refused_batch=30))
        for i in range(250):
            log.note(call(f"u{i}"), DENY, 0.001)
        assert log.dropped == 150
        assert await log.flush() == 30  # a batch at a time
        await log.stop()  # writes what is left
        assert (await list_refused(ctx))[1] == 100
        assert log.written == 100

    async def test_stopping_writes_what_is_still_queued(self, ctx: BillingContext) -> None:
        log = RefusedLog(ctx, batch_delay_seconds=60)
        log.start()
        log.note(call("u1"), DENY, 0.001)
        await log.stop()
        assert (await list_refused(ctx))[1] == 1


class TestRetention:
    async def test_old_refusals_and_those_past_the_most_kept_are_deleted(
        self, ctx: BillingContext, clock: FakeClock
    ) -> None:
        kept = keeping(ctx, refused_keep_days=7, refused_max_rows=5)
        log = RefusedLog(kept, prune_every_seconds=0)
        for i in range(3):
            log.note(call(f"old{i}"), DENY, 0.001)
        await log.flush()
        clock.advance(8 * 24 * 3600)
        for i in range(8):
            log.note(call(f"new{i}"), DENY, 0.001)
        await log.flush()
        log.start()
        log.note(call("last"), DENY, 0.001)
        while log.written < 12:
            await _yield()
        while (await list_refused(ctx))[1] != 5:  # pruned once the batch is written
            await _yield()
        await log.stop()
        records, _ = await list_refused(ctx)
        assert [r.uniqueid for r in records] == ["last", "new7", "new6", "new5", "new4"]


class TestRecordsAndStatistics:
    async def test_the_records_filter_by_outcome_and_statistics_count_refused_apart(
        self, ctx: BillingContext
    ) -> None:
        await make_extension(ctx, balance="10")
        await make_rate(ctx)
        for uniqueid, billsec in (("a", 100), ("b", 0)):
            await authorize(ctx, uniqueid)
            await settle(ctx, ended(uniqueid, billsec=billsec))
        log = RefusedLog(ctx)
        log.note(call("r1"), DENY, 0.001)
        log.note(call("r2", "101"), DENY, 0.001)
        await log.flush()
        answered, _ = await reports.list_calls(ctx, outcome="answered")
        unanswered, _ = await reports.list_calls(ctx, outcome="unanswered")
        assert [c.uniqueid for c in answered] == ["a"]
        assert [c.uniqueid for c in unanswered] == ["b"]
        [day] = await reports.statistics(ctx, "day")
        assert (day.calls, day.answered, day.refused) == (2, 1, 2)
        split = await reports.statistics(ctx, "month", per_extension=True)
        assert [(r.extension, r.calls, r.refused) for r in split] == [("100", 2, 1),
                                                                      ("101", 0, 1)]
        later = reports.Period(START.date() + timedelta(days=1))
        assert await reports.statistics(ctx, "day", later) == []
        found, total = await list_refused(ctx, keyword="101")
        assert total == 1
        assert found[0].uniqueid == "r2"


async def _yield() -> None:
    import asyncio

    await asyncio.sleep(0.01)
