"""The call records' keyword, through migration 0006's trigram index (FTS5 on SQLite,
pg_trgm on PostgreSQL): the same answers as "contains, any case", for any text typed."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import text

from coobill.services import reports
from coobill.services.context import BillingContext
from coobill.storage.tables import Call
from tests.services.conftest import make_extension

CALLS = [  # caller, caller ID name, number dialled
    ("100", "Alice", "9138000001"),
    ("101", 'Bob "the builder"', "9022334455"),
    ("102", "AND OR NEAR", "9001238000"),
    ("103", "Zoë", "00441234567"),
]


@pytest.fixture
async def calls(ctx: BillingContext) -> BillingContext:
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


@pytest.fixture
async def many_calls(ctx: BillingContext) -> BillingContext:
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
        await uow.commit()
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
