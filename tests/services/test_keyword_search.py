"""The call records' keyword, through migration 0006's trigram index (FTS5 on SQLite,
pg_trgm on PostgreSQL): the same answers as "contains, any case", for any text typed -
on SQLite whether the calls are in the index yet or not (migration 0010: the daemon takes
them in after their settlement, daemon/call_index.py)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from coobill.daemon import call_index
from coobill.daemon.call_index import CallIndexer
from coobill.services import reports
from coobill.services.context import BillingContext
from coobill.storage import call_search
from coobill.storage.tables import Call
from coobill.tally import Tally
from tests.services.conftest import make_extension

CALLS = [  # caller, caller ID name, number dialled
    ("100", "Alice", "9138000001"),
    ("101", 'Bob "the builder"', "9022334455"),
    ("102", "AND OR NEAR", "9001238000"),
    ("103", "Zoë", "00441234567"),
]


async def take_in(ctx: BillingContext) -> int:
    """Every call into SQLite's index, as the daemon's indexer does; how many."""
    if not await CallIndexer.wanted(ctx):
        return 0
    return await CallIndexer(ctx).index()


async def mark(ctx: BillingContext) -> int:
    async with ctx.uow.read() as uow:
        return int((await uow.session.execute(text(
            "SELECT indexed_up_to FROM call_search_mark"))).scalar_one())


@pytest.fixture(params=["indexed", "not_indexed_yet"])
async def calls(ctx: BillingContext, request: pytest.FixtureRequest) -> BillingContext:
    await make_extension(ctx, "103", name="Reception desk")
    async with ctx.uow() as uow:
        for i, (ext, name, number) in enumerate(CALLS):
            start = datetime(2026, 11, 20, 9, i)
            uow.session.add(Call(
                uniqueid=f"17000.{i}", caller_extension=ext, caller_name=name,
                dialled_number=number, start=start, answer=start, end=start,
                billable_seconds=10, trunk="t", rate_label="", cost=Decimal(0),
                disposition="ANSWERED", gated=False))
        await uow.commit()
    if request.param == "indexed":
        await take_in(ctx)
    return ctx


async def found(ctx: BillingContext, keyword: str) -> list[str]:
    records, total = await reports.list_calls(ctx, keyword=keyword)
    assert total == len(records)
    return sorted(r.extension for r in records)


@pytest.mark.parametrize(("keyword", "extensions"), [
    ("8000", ["100", "102"]),  # part of a number, anywhere in it
    ("ALICE", ["100"]),  # any case
    ("alice", ["100"]),
    ('"the', ["101"]),  # a quote is text, not query syntax
    ("AND", ["102"]),  # nor are the FTS5 operators
    ("near", ["102"]),
    ("ilder\"", ["101"]),
    ("Recep", ["103"]),  # the name the billing user gave the extension
    ("10", ["100", "101", "102", "103"]),  # shorter than a trigram: read in full
    ("0044", ["103"]),
    ("%", []),  # wildcards are literal
    ("1_3", []),
    ("nothing", []),
])
async def test_the_keyword_finds_what_contains_it(
    calls: BillingContext, keyword: str, extensions: list[str]
) -> None:
    assert await found(calls, keyword) == extensions


async def test_an_edited_or_deleted_call_is_searched_as_it_is_now(calls: BillingContext) -> None:
    async with calls.uow() as uow:
        await uow.session.execute(text(
            "UPDATE call SET caller_name = 'Carol' WHERE caller_extension = '100'"))
        await uow.session.execute(text("DELETE FROM call WHERE caller_extension = '101'"))
        await uow.commit()
    assert await found(calls, "Alice") == []
    assert await found(calls, "carol") == ["100"]
    assert await found(calls, "builder") == []


async def test_the_search_uses_the_index(calls: BillingContext) -> None:
    """Not a timing: the index is there and the query asks it (EXPLAIN)."""
    async with calls.uow.read() as uow:
        if calls.uow.dialect == "sqlite":
            plan = (await uow.session.execute(text(
                "EXPLAIN QUERY PLAN SELECT rowid FROM call_search "
                "WHERE call_search MATCH '\"8000\"'"))).all()
            assert any("VIRTUAL TABLE INDEX" in str(row) for row in plan), plan
        else:
            names = (await uow.session.execute(text(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'call' "
                "AND schemaname = current_schema()"))).scalars().all()
            assert {"ix_call_caller_extension_trgm", "ix_call_caller_name_trgm",
                    "ix_call_dialled_number_trgm"} <= set(names)


@pytest.fixture(params=["indexed", "half_indexed"])
async def many_calls(ctx: BillingContext, request: pytest.FixtureRequest) -> BillingContext:
    """Forty calls of four extensions over four days: some match `Desk` by their caller ID
    name, some by the name of their extension, some both; a few answered."""
    await make_extension(ctx, "201", name="Front desk")
    await make_extension(ctx, "202", name="Back office")
    async with ctx.uow() as uow:
        for i in range(40):
            ext = ("201", "202", "203", "204")[i % 4]
            start = datetime(2026, 11, 20 + i // 10, 9, i)
            uow.session.add(Call(
                uniqueid=f"18000.{i}", caller_extension=ext,
                caller_name="Desk phone" if i % 3 == 0 else "Phone",
                dialled_number=f"90{i:08d}", start=start, answer=start, end=start,
                billable_seconds=10, trunk="t", rate_label="", cost=Decimal(0),
                disposition="ANSWERED" if i % 5 == 0 else "NO ANSWER", gated=False))
            if i == 19 and request.param == "half_indexed":
                await uow.commit()
                await take_in(ctx)  # the first twenty in the index, the rest not yet
        await uow.commit()
    if request.param == "indexed":
        await take_in(ctx)
    return ctx


@pytest.mark.parametrize("walk_matches", [1, 10**9])
@pytest.mark.parametrize(("first", "extensions", "outcome", "offset", "limit"), [
    (None, (), "", 0, 5),
    (None, (), "", 0, None),
    (datetime(2026, 11, 21), (), "", 0, 3),
    (None, ("201", "203"), "", 0, 4),
    (None, (), "unanswered", 2, 4),
    (None, (), "answered", 0, 10),
])
async def test_a_common_keyword_pages_and_counts_as_any_keyword(
    many_calls: BillingContext, monkeypatch: pytest.MonkeyPatch, walk_matches: int,
    first: datetime | None, extensions: tuple[str, ...], outcome: str, offset: int,
    limit: int | None,
) -> None:
    """A keyword with many matches is paged by walking the time index and counted as the
    union of its two ways to match (WALK_MATCHES); the answer is the same as the sort's, newest
    first, with every filter."""
    from coobill.services.reports import calls as call_reports
    from coobill.services.reports.period import Period

    monkeypatch.setattr(call_reports, "WALK_MATCHES", walk_matches)
    monkeypatch.setattr(call_reports, "WALK_DEPTH", 1)
    async with many_calls.uow.read() as uow:
        every = (await uow.session.execute(text(
            "SELECT uniqueid, caller_extension, caller_name, start, disposition FROM call"
        ))).all()
    expected = sorted(
        (c for c in every
         if ("desk" in c.caller_name.lower() or c.caller_extension == "201")
         and (first is None or str(c.start) >= str(first))
         and (not extensions or c.caller_extension in extensions)
         and (outcome != "answered" or c.disposition == "ANSWERED")
         and (outcome != "unanswered" or c.disposition != "ANSWERED")),
        key=lambda c: str(c.start), reverse=True)
    period = Period(first=first.date()) if first else Period()
    records, total = await reports.list_calls(
        many_calls, period, "desk", extensions=extensions, offset=offset, limit=limit,
        outcome=outcome)
    assert total == len(expected)
    wanted = expected[offset:offset + limit if limit is not None else None]
    assert [r.uniqueid for r in records] == [c.uniqueid for c in wanted]


class TestTheIndexFilledAfterSettlement:
    """SQLite (migration 0010): the index holds the calls up to its mark; the indexer takes
    the later ones in, in id order, a batch at a time."""

    async def test_the_indexer_takes_the_calls_past_the_mark_in_batches(
        self, sqlite_ctx: BillingContext, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        ctx = sqlite_ctx
        monkeypatch.setattr(call_search, "BATCH", 3)
        monkeypatch.setattr(call_index, "BEHIND_PAUSE_SECONDS", 0)
        before = await mark(ctx)
        await record(ctx, 7)
        assert await indexed(ctx, "555") == []  # written, not taken in yet
        assert await take_in(ctx) == 7  # three, three and one
        ids = await call_ids(ctx)
        assert await mark(ctx) == max(ids) > before
        assert await indexed(ctx, "555") == ids
        assert await take_in(ctx) == 0

    async def test_an_edit_or_delete_of_a_call_not_taken_in_yet_leaves_the_index_sound(
        self, sqlite_ctx: BillingContext
    ) -> None:
        """The triggers touch the index only for calls in it (FTS5's 'delete' of a row it
        does not hold would damage it); the indexer takes a call in as it is by then."""
        ctx = sqlite_ctx
        await record(ctx, 2)
        first, second = await call_ids(ctx)
        async with ctx.uow() as uow:
            await uow.session.execute(text(
                "UPDATE call SET dialled_number = '9777' WHERE id = :id"), {"id": first})
            await uow.session.execute(text("DELETE FROM call WHERE id = :id"), {"id": second})
            await uow.commit()
        await take_in(ctx)
        assert await indexed(ctx, "9777") == [first]
        assert await indexed(ctx, "555") == []
        async with ctx.uow() as uow:
            await uow.session.execute(text(
                "INSERT INTO call_search(call_search) VALUES ('integrity-check')"))
            await uow.commit()

    async def test_a_call_deleted_by_hand_lowers_the_mark_so_its_id_given_again_is_found(
        self, sqlite_ctx: BillingContext
    ) -> None:
        """SQLite gives the next row the largest rowid + 1: after the last call is deleted
        its id comes again, and must not be taken for one in the index."""
        ctx = sqlite_ctx
        await record(ctx, 3)
        await take_in(ctx)
        last = max(await call_ids(ctx))
        async with ctx.uow() as uow:
            await uow.session.execute(text("DELETE FROM call WHERE id = :id"), {"id": last})
            await uow.commit()
        assert await mark(ctx) == last - 1
        start = datetime(2026, 12, 7, 10)
        async with ctx.uow() as uow:
            uow.session.add(Call(
                uniqueid="19001.0", caller_extension="101", caller_name="", dialled_number="9777",
                start=start, answer=start, end=start, billable_seconds=10, trunk="t",
                rate_label="", cost=Decimal(0), disposition="ANSWERED", gated=False))
            await uow.commit()
        assert await call_ids(ctx) == [*range(last - 2, last + 1)]  # its id again
        assert await found(ctx, "9777") == ["101"]
        await take_in(ctx)
        assert await indexed(ctx, "9777") == [last]
        assert await found(ctx, "9777") == ["101"]

    async def test_the_daemons_indexer_takes_in_what_was_recorded_at_start_and_when_nudged(
        self, sqlite_ctx: BillingContext, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        ctx = sqlite_ctx
        monkeypatch.setattr(call_index, "PACE_SECONDS", 0)
        await record(ctx, 2)
        rounds = Tally()
        indexer = CallIndexer(ctx, on_indexed=rounds.add)
        indexer.start()
        try:
            await rounds.reached(1)
            assert await mark(ctx) == max(await call_ids(ctx))
            await record(ctx, 1, first=2)
            indexer.nudge()
            await rounds.reached(2)
            assert await mark(ctx) == max(await call_ids(ctx))
        finally:
            await indexer.stop()

    async def test_a_round_that_fails_is_logged_and_the_next_takes_the_calls_in(
        self, sqlite_ctx: BillingContext, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture
    ) -> None:
        ctx = sqlite_ctx
        monkeypatch.setattr(call_index, "PACE_SECONDS", 0)
        real, failures = call_search.index_next, [OperationalError("BEGIN", {}, "locked")]

        def once_locked(session: Session, limit: int = call_search.BATCH) -> int:
            if failures:
                raise failures.pop()
            return real(session, limit)

        monkeypatch.setattr(call_search, "index_next", once_locked)
        await record(ctx, 2)
        rounds = Tally()
        indexer = CallIndexer(ctx, on_indexed=rounds.add)
        indexer.start()
        try:
            indexer.nudge()  # the first round fails: the next comes when nudged
            await rounds.reached(1)
            assert await mark(ctx) == max(await call_ids(ctx))
        finally:
            await indexer.stop()
        assert "call_index.failed" in caplog.text

    async def test_postgresql_has_no_index_to_fill(self, ctx: BillingContext) -> None:
        assert await CallIndexer.wanted(ctx) == (ctx.uow.dialect == "sqlite")


async def record(ctx: BillingContext, count: int, first: int = 0) -> None:
    async with ctx.uow() as uow:
        for i in range(first, first + count):
            start = datetime(2026, 12, 7, 9, i)
            uow.session.add(Call(
                uniqueid=f"19000.{i}", caller_extension="100", caller_name="",
                dialled_number=f"9555{i:04d}", start=start, answer=start, end=start,
                billable_seconds=10, trunk="t", rate_label="", cost=Decimal(0),
                disposition="ANSWERED", gated=False))
        await uow.commit()


async def call_ids(ctx: BillingContext) -> list[int]:
    async with ctx.uow.read() as uow:
        return list((await uow.session.execute(text("SELECT id FROM call ORDER BY id"))).scalars())


async def indexed(ctx: BillingContext, word: str) -> list[int]:
    """The calls the index itself finds the word in."""
    async with ctx.uow.read() as uow:
        return sorted((await uow.session.execute(text(
            "SELECT rowid FROM call_search WHERE call_search MATCH :phrase"),
            {"phrase": f'"{word}"'})).scalars())
