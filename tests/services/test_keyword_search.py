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
