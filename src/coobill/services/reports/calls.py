"""Call records: found by period, keyword and extension, listed a page at a time and
exported in batches."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    func,
    literal_column,
    or_,
    select,
    text,
    union,
    union_all,
)

from coobill.errors import BadRequest
from coobill.services.context import BillingContext
from coobill.services.reports.period import EXPORT_BATCH, Period, keyset, within
from coobill.storage import call_search
from coobill.storage.tables import Call, Extension
from coobill.storage.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class CallRecord:
    uniqueid: str
    start: datetime | None
    answer: datetime | None
    end: datetime | None
    extension: str
    name: str
    number: str
    billable_seconds: int
    trunk: str
    rate: str
    cost: Decimal
    disposition: str
    gated: bool
    buy_cost: Decimal | None = None  # what it cost on its trunk; None: no buy rate known

    @property
    def margin(self) -> Decimal | None:
        """Revenue less buy cost; None when the buy cost is not known."""
        return None if self.buy_cost is None else self.cost - self.buy_cost


# A keyword this long or longer is looked up in the trigram index of migration 0006 (a
# trigram is three characters); a shorter one matches so many calls that reading them in
# time order finds a page at once.
TRIGRAM = 3


# A keyword matching at least this many calls has its page found by reading the (start, id)
# index newest first and keeping the matches, not by sorting every match: on SQLite a
# keyword in one call of nine among a million (100,000 matches) took 250 ms to sort and
# 70 ms to walk. Fewer matches sort at once, and a page deep among them is left to the sort:
# the walk would read about (offset + limit) * calls / matches rows to reach it.
WALK_MATCHES = 20_000
WALK_DEPTH = 10  # the walk serves pages within the first 1/WALK_DEPTH of the matches


# The call records' outcome filter (the portal's answered / unanswered; refused calls are
# services/refused.py's own records).
OUTCOMES = ("", "answered", "unanswered")


def check_outcome(outcome: str | None) -> str:
    if (outcome or "") not in (*OUTCOMES, "refused"):
        raise BadRequest("outcome: must be answered, unanswered or refused", field="outcome")
    return outcome or ""


@dataclass(frozen=True, slots=True)
class _Keyword:
    """A keyword as one request uses it, looked up once: its text, the extensions the
    billing user gave a name containing it, and whether SQLite's trigram index (migration
    0006) finds it."""

    word: str
    named: Sequence[str]
    indexed: bool

    def matching_ids(self) -> CompoundSelect[Any]:
        """The ids of the calls it is in (when `indexed`): those the trigram index finds, and
        those written since the index last took calls in (migration 0010), read in full - a
        record is found from the moment it is written. One list, so that each part is
        planned alone: the index's lookup, and a range of ids past its mark."""
        return union_all(*self.id_parts())

    def id_parts(self) -> tuple[Select[Any], Select[Any]]:
        """The two parts of `matching_ids`: the index's lookup, the calls past its mark."""
        phrase = '"' + self.word.replace('"', '""') + '"'  # FTS5: a phrase, nothing parsed
        found: Select[Any] = (select(literal_column("rowid")).select_from(text(call_search.FTS))
                 .where(text(f"{call_search.FTS} MATCH :phrase").bindparams(phrase=phrase)))
        since = select(Call.id).where(Call.id > call_search.indexed_up_to(), self._read_in_full())
        return found, since

    def contained(self) -> ColumnElement[bool]:
        """Calls whose extension, caller name or number dialled contains it, any case."""
        if self.indexed:
            return Call.id.in_(self.matching_ids())
        # PostgreSQL: with pg_trgm (migration 0006) these ILIKEs use its GIN indexes.
        return self._read_in_full()

    def _read_in_full(self) -> ColumnElement[bool]:
        return or_(Call.caller_extension.icontains(self.word, autoescape=True),
                   Call.caller_name.icontains(self.word, autoescape=True),
                   Call.dialled_number.icontains(self.word, autoescape=True))


async def _keyword(uow: UnitOfWork, keyword: str | None) -> _Keyword | None:
    word = (keyword or "").strip()
    if not word:
        return None
    # the extension's name as the billing user set it, not only the caller ID's: a small
    # table, asked first, so the calls' own index on the caller can serve the match
    named = (await uow.session.execute(select(Extension.number).where(
        Extension.name.icontains(word, autoescape=True)))).scalars().all()
    indexed = len(word) >= TRIGRAM and await call_search.has_index(uow.session)
    return _Keyword(word, named, indexed)


def _calls(period: Period, keyword: _Keyword | None, extensions: Sequence[str],
           outcome: str = "", *, walk: bool = False) -> Select[Any]:
    """The ids of the calls wanted. The keyword is part of the caller's extension, the
    caller ID's name or the number dialled, or part of the name the billing user gave the
    extension. `walk`: the keyword's matches are tests on each call the (start, id) index
    yields, not where the query starts from (see WALK_MATCHES)."""
    query = within(select(Call.id), Call.start, period)
    if outcome == "answered":
        query = query.where(Call.disposition == "ANSWERED")
    elif outcome == "unanswered":
        query = query.where(Call.disposition != "ANSWERED")
    if keyword is not None:
        if walk:
            # SQLite plans from an indexed column, not an expression of one: `id + 0` and
            # `caller_extension || ''` keep it on the (start, id) index, the matches a list.
            query = query.where(or_((Call.id + 0).in_(keyword.matching_ids()),
                                    Call.caller_extension.concat("").in_(keyword.named)))
        else:
            query = query.where(or_(keyword.contained(),
                                    Call.caller_extension.in_(keyword.named)))
    if extensions:
        query = query.where(Call.caller_extension.in_(list(extensions)))
    return query


async def _count(uow: UnitOfWork, wanted: Select[Any], period: Period,
                 keyword: _Keyword | None, extensions: Sequence[str], outcome: str) -> int:
    """How many calls `wanted` finds. A keyword in SQLite's trigram index is counted as the
    union of its two ways to match - the index's own ids (or, with other filters, the calls
    among them that pass), and the calls of the extensions named so: 90 ms for a keyword in
    one call of nine among a million, where the OR of both took 220 ms, a call read per match."""
    ids: Select[Any] | CompoundSelect[Any] = wanted
    if keyword is not None and keyword.indexed:
        filters = _calls(period, None, extensions, outcome)
        named = filters.where(Call.caller_extension.in_(keyword.named))
        if filters.whereclause is None:
            # No other filter: the index's ids themselves (each one a call's: its delete
            # trigger takes a deleted call out), not each looked up in the calls first -
            # 250 -> ~100 ms for a keyword in one call of nine among a million.
            ids = union(*keyword.id_parts(), named)
        else:
            # (SQLite takes no compound select in parentheses inside a UNION: a list)
            ids = union(filters.where(Call.id.in_(keyword.matching_ids())), named)
    return int((await uow.session.execute(
        select(func.count()).select_from(ids.subquery()))).scalar_one())


# A call record's columns, in CallRecord's order, then the id the exports page by: plain
# rows, not ORM objects (a million-record export builds no identity map).
_CALL_COLUMNS = (Call.uniqueid, Call.start, Call.answer, Call.end, Call.caller_extension,
                 Call.caller_name, Call.dialled_number, Call.billable_seconds, Call.trunk,
                 Call.rate_label, Call.cost, Call.disposition, Call.gated, Call.buy_cost,
                 Call.id)


def _call_record(row: Any) -> CallRecord:
    return CallRecord(*row[:-1])


# Newest first, as the (start, id) index reads backwards: with no filter, a page deep in a
# million calls is found from the index alone (its ids), and only its own rows are read
# (_rows_of). A call without a start (a CDR that had none) sorts as each database puts NULL:
# last on SQLite, first on PostgreSQL.
_NEWEST_CALLS = (Call.start.desc(), Call.id.desc())


def _rows_of(ids: Select[Any]) -> Select[Any]:
    return select(*_CALL_COLUMNS).where(Call.id.in_(ids)).order_by(*_NEWEST_CALLS)


async def list_calls(
    ctx: BillingContext, period: Period = Period(), keyword: str | None = None,
    *, extensions: Sequence[str] = (), offset: int = 0, limit: int | None = None,
    outcome: str = "",
) -> tuple[list[CallRecord], int]:
    async with ctx.uow.read() as uow:
        outcome = check_outcome(outcome)
        word = await _keyword(uow, keyword)
        wanted = _calls(period, word, extensions, outcome)
        total = await _count(uow, wanted, period, word, extensions, outcome)
        if (word is not None and word.indexed and total >= WALK_MATCHES
                and WALK_DEPTH * (offset + (limit or total)) <= total):
            wanted = _calls(period, word, extensions, outcome, walk=True)
        page = wanted.order_by(*_NEWEST_CALLS).offset(offset)
        if limit is not None:
            page = page.limit(limit)
        rows = (await uow.session.execute(_rows_of(page))).all()
    return [_call_record(row) for row in rows], total


async def iter_calls(
    ctx: BillingContext, period: Period = Period(), keyword: str | None = None,
    *, extensions: Sequence[str] = (), batch: int = EXPORT_BATCH,
) -> AsyncIterator[list[CallRecord]]:
    """Every call `list_calls` finds, in its order, a batch at a time (see iter_recharges):
    those with a start by (start, id) downwards; those without one by id, where the
    database sorts NULL (after them on SQLite, before them on PostgreSQL)."""
    async with ctx.uow.read() as uow:
        wanted = _calls(period, await _keyword(uow, keyword), extensions)
    nulls_first = ctx.uow.dialect == "postgresql"
    phases = (_undated, _dated) if nulls_first else (_dated, _undated)
    for phase in phases:
        async for records in phase(ctx, wanted, batch):
            yield records


async def _dated(ctx: BillingContext, wanted: Select[Any], batch: int
                 ) -> AsyncIterator[list[CallRecord]]:
    dated = wanted.where(Call.start.is_not(None)).order_by(*_NEWEST_CALLS)
    async for rows in keyset(ctx, dated, (Call.start, Call.id),
                              lambda row: (row.start, row.id), _rows_of, batch):
        yield [_call_record(row) for row in rows]


async def _undated(ctx: BillingContext, wanted: Select[Any], batch: int
                   ) -> AsyncIterator[list[CallRecord]]:
    undated = wanted.where(Call.start.is_(None)).order_by(Call.id.desc())
    async for rows in keyset(ctx, undated, (Call.id,), lambda row: (row.id,), _rows_of, batch):
        yield [_call_record(row) for row in rows]
