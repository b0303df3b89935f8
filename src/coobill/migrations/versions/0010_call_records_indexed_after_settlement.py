"""call records indexed for the keyword after their settlement, not in it (SQLite)

Migration 0006 kept SQLite's FTS5 trigram index of the call records by a trigger on every
INSERT: each settlement then wrote the index too, and FTS5 flushes what it holds at every
savepoint - the ledger thread gives each unit of work one (storage/group_commit.py) - so a
settlement wrote a segment of its own and merged segments: eight more statements on the
ledger thread, a fifth of settlement's rate (docs/benchmarks.md, issue 16).

Now the index holds the calls up to a mark (table call_search_mark, one row: indexed_up_to,
a call id), and the daemon indexes the later ones in batches, off the settlement's
transaction (storage/call_search.py, daemon/call_index.py). The keyword search asks the
index for the calls up to the mark and reads the few after it in full
(services/reports/calls.py), so a record is found from the moment it is written. A call
edited or deleted is taken out of the index by the triggers only when it is in it (its id
up to the mark). coobill never deletes a call record; one deleted by hand lowers the mark to
the largest id left (SQLite gives the largest rowid + 1 to the next row: an id given again
is past the mark, read in full and taken in).

PostgreSQL is unchanged: pg_trgm's GIN indexes are kept by PostgreSQL itself, outside the
savepoints' cost.

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-07
"""

from alembic import op
from sqlalchemy import text

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None

SEARCHED = ("caller_extension", "caller_name", "dialled_number")
FTS = "call_search"
MARK = "call_search_mark"
_COLUMNS = ", ".join(SEARCHED)
_NEW = ", ".join(f"new.{c}" for c in SEARCHED)
_OLD = ", ".join(f"old.{c}" for c in SEARCHED)
_INDEXED = f"old.id <= (SELECT indexed_up_to FROM {MARK})"


def _has_index() -> bool:
    bind = op.get_bind()
    return bind.dialect.name == "sqlite" and bind.execute(text(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"
    ), {"name": FTS}).first() is not None


def _triggers(*, deferred: bool) -> None:
    when = f"WHEN {_INDEXED} " if deferred else ""
    lower = (f"UPDATE {MARK} SET indexed_up_to = "
             "MIN(indexed_up_to, COALESCE((SELECT MAX(id) FROM call), 0)); " if deferred else "")
    op.execute(
        f"CREATE TRIGGER {FTS}_delete AFTER DELETE ON call {when}BEGIN "
        f"INSERT INTO {FTS}({FTS}, rowid, {_COLUMNS}) VALUES ('delete', old.id, {_OLD}); "
        f"{lower}END"
    )
    op.execute(
        f"CREATE TRIGGER {FTS}_update AFTER UPDATE OF {_COLUMNS} ON call {when}BEGIN "
        f"INSERT INTO {FTS}({FTS}, rowid, {_COLUMNS}) VALUES ('delete', old.id, {_OLD}); "
        f"INSERT INTO {FTS}(rowid, {_COLUMNS}) VALUES (new.id, {_NEW}); END"
    )
    if not deferred:
        op.execute(
            f"CREATE TRIGGER {FTS}_insert AFTER INSERT ON call BEGIN "
            f"INSERT INTO {FTS}(rowid, {_COLUMNS}) VALUES (new.id, {_NEW}); END"
        )


def _drop_triggers() -> None:
    for trigger in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS {FTS}_{trigger}")


def upgrade() -> None:
    if not _has_index():
        return
    _drop_triggers()
    op.execute(f"CREATE TABLE {MARK} (id INTEGER PRIMARY KEY CHECK (id = 1), "
               "indexed_up_to INTEGER NOT NULL)")
    # Every call so far is in the index (0006's trigger put it there).
    op.execute(f"INSERT INTO {MARK} (id, indexed_up_to) "
               "VALUES (1, COALESCE((SELECT MAX(id) FROM call), 0))")
    _triggers(deferred=True)


def downgrade() -> None:
    if not _has_index():
        return
    _drop_triggers()
    # The calls not indexed yet go in, as 0006's trigger would have put them.
    op.execute(f"INSERT INTO {FTS}(rowid, {_COLUMNS}) SELECT id, {_COLUMNS} FROM call "
               f"WHERE id > (SELECT indexed_up_to FROM {MARK})")
    op.execute(f"DROP TABLE {MARK}")
    _triggers(deferred=False)
