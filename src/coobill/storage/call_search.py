"""The call records' keyword index on SQLite, filled after the records are written.

Migration 0006 made the index (an FTS5 trigram table over the caller's extension, the caller
ID's name and the number dialled, its content the call table); migration 0010 made it hold
the calls up to a mark, so that a settlement does not write the index in its own transaction.
`index_next` takes the next calls past the mark into it, in id order, and moves the mark:
the daemon runs it in batches (daemon/call_index.py). The keyword search asks the index for
the calls up to the mark and reads those after it in full (services/reports/calls.py).

Where the SQLite library has no trigram tokenizer there is no index (`has_index` is False),
and nothing here is used.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

FTS = "call_search"
MARK = "call_search_mark"
# Calls taken into the index by one unit of work: 500 took 1.4 ms of the ledger thread on
# the Intel machine of docs/benchmarks.md (2,000: 4.6 ms, a gate request queued behind it
# would wait as long); one at a time, by 0006's trigger, each settlement paid ~8 statements.
BATCH = 500

_MARK = text("SELECT indexed_up_to FROM call_search_mark")
_NEXT = text("SELECT MAX(id), COUNT(*) FROM (SELECT id FROM call WHERE id > :mark "
             "ORDER BY id LIMIT :limit)")
_INDEX = text("INSERT INTO call_search(rowid, caller_extension, caller_name, dialled_number) "
              "SELECT id, caller_extension, caller_name, dialled_number FROM call "
              "WHERE id > :mark AND id <= :up_to")
_MOVE = text("UPDATE call_search_mark SET indexed_up_to = :up_to")


async def has_index(session: AsyncSession) -> bool:
    """This ledger has the keyword index (SQLite with FTS5's trigram tokenizer)."""
    if session.bind.dialect.name != "sqlite":
        return False
    return (await session.execute(text(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"
    ), {"name": MARK})).first() is not None


def indexed_up_to() -> Any:
    """The mark, as a scalar subquery: the index holds every call of an id up to it."""
    return select(literal_column("indexed_up_to")).select_from(text(MARK)).scalar_subquery()


def index_next(session: Session, limit: int = BATCH) -> int:
    """Take the next `limit` calls past the mark into the index and move the mark past them;
    how many it took (0: the index is up to date)."""
    mark = session.execute(_MARK).scalar_one()
    up_to, taken = session.execute(_NEXT, {"mark": mark, "limit": limit}).one()
    if not taken:
        return 0
    session.execute(_INDEX, {"mark": mark, "up_to": up_to})
    session.execute(_MOVE, {"up_to": up_to})
    return int(taken)
