"""call records keyword index; records pages by (time, id)

The call records' keyword is part of the caller's extension, the caller ID's name or the
number dialled (services/reports/). A LIKE '%…%' on each reads every call: over 1,000,000
records about 2 s on SQLite, past the pages' 300 ms target (issue 16, docs/benchmarks.md).
Both databases have a trigram index made for substring search:

- SQLite: an FTS5 table with the trigram tokenizer (SQLite 3.34 and later) over the three
  columns, its content the call table itself (external content: the index holds only the
  trigrams), kept by triggers as the FTS5 documentation gives them. A phrase query of a
  keyword of three characters or more is exactly "contains", case-insensitively. Where the
  SQLite library lacks the tokenizer, nothing is created and the search reads every call, as
  before.
- PostgreSQL: pg_trgm's GIN indexes on the three columns, which ILIKE '%…%' uses. The
  extension is created in the public schema when it is missing and the user may create it
  (pg_trgm is a trusted extension from PostgreSQL 13); otherwise nothing is created.

The records pages and the CSV exports read newest first by (start, id) for calls and
(created_at, id) for recharges: the indexes on the time alone become indexes on both, so a
page deep in a million records is found from the index alone (PostgreSQL's index-only scan;
on SQLite the rowid was in the index already) and the exports' keyset reads in index order.

Neither keyword index is in the models (an FTS table and operator-class indexes are not what
SQLAlchemy reflects); tests/storage/test_migrations.py leaves them out of its comparison.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from alembic import op
from sqlalchemy import exc

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SEARCHED = ("caller_extension", "caller_name", "dialled_number")
FTS = "call_search"
_COLUMNS = ", ".join(SEARCHED)
_NEW = ", ".join(f"new.{c}" for c in SEARCHED)
_OLD = ", ".join(f"old.{c}" for c in SEARCHED)


def _sqlite_upgrade() -> None:
    bind = op.get_bind()
    try:
        with bind.begin_nested():
            bind.exec_driver_sql(
                f"CREATE VIRTUAL TABLE {FTS} USING fts5({_COLUMNS}, content='call', "
                f"content_rowid='id', tokenize='trigram')"
            )
    except exc.OperationalError:  # no FTS5, or no trigram tokenizer: search reads every call
        return
    bind.exec_driver_sql(f"INSERT INTO {FTS}({FTS}) VALUES ('rebuild')")
    bind.exec_driver_sql(
        f"CREATE TRIGGER {FTS}_insert AFTER INSERT ON call BEGIN "
        f"INSERT INTO {FTS}(rowid, {_COLUMNS}) VALUES (new.id, {_NEW}); END"
    )
    bind.exec_driver_sql(
        f"CREATE TRIGGER {FTS}_delete AFTER DELETE ON call BEGIN "
        f"INSERT INTO {FTS}({FTS}, rowid, {_COLUMNS}) VALUES ('delete', old.id, {_OLD}); END"
    )
    bind.exec_driver_sql(
        f"CREATE TRIGGER {FTS}_update AFTER UPDATE OF {_COLUMNS} ON call BEGIN "
        f"INSERT INTO {FTS}({FTS}, rowid, {_COLUMNS}) VALUES ('delete', old.id, {_OLD}); "
        f"INSERT INTO {FTS}(rowid, {_COLUMNS}) VALUES (new.id, {_NEW}); END"
    )


def _pg_trgm_schema() -> str | None:
    bind = op.get_bind()
    found = bind.exec_driver_sql(
        "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'"
    ).scalar()
    if found is not None:
        return str(found)
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION pg_trgm SCHEMA public")
    except exc.DBAPIError:  # not available, or not allowed: search reads every call
        return None
    return "public"


def _pg_upgrade() -> None:
    schema = _pg_trgm_schema()
    if schema is None:
        return
    for column in SEARCHED:
        op.execute(
            f"CREATE INDEX ix_call_{column}_trgm ON call USING gin ({column} {schema}.gin_trgm_ops)"
        )


def upgrade() -> None:
    op.drop_index("ix_call_start", table_name="call")
    op.create_index("ix_call_start_id", "call", ["start", "id"])
    op.drop_index("ix_recharge_created_at", table_name="recharge")
    op.create_index("ix_recharge_created_at_id", "recharge", ["created_at", "id"])
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _sqlite_upgrade()
    elif dialect == "postgresql":
        _pg_upgrade()


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS {FTS}_{trigger}")
        op.execute(f"DROP TABLE IF EXISTS {FTS}")
    elif dialect == "postgresql":
        for column in SEARCHED:
            op.execute(f"DROP INDEX IF EXISTS ix_call_{column}_trgm")
    op.drop_index("ix_recharge_created_at_id", table_name="recharge")
    op.create_index("ix_recharge_created_at", "recharge", ["created_at"])
    op.drop_index("ix_call_start_id", table_name="call")
    op.create_index("ix_call_start", "call", ["start"])
