"""call statistics by day

Statistics group calls by date(start) and extension (services/reports/). Without help both
databases sort every call of the period to do it - over 1,000,000 calls about 1.2 s on SQLite
and on PostgreSQL, past the 1 s target (docs/benchmarks.md).

- SQLite: an index on exactly (date(start), caller_extension, billable_seconds, cost). The
  statistics query reads it in order: no sort, no table lookups (~0.3 s). An index on an
  expression is invisible to SQLAlchemy's reflection (it warns and skips it), so it is not in
  the models; a later migration that rebuilds `call` with batch_alter_table must create it
  again.
- PostgreSQL (14 and later): extended statistics on date(start), so the planner knows there
  are ~365 days rather than ~one group per call and hashes the groups instead of sorting
  every call (~0.3 s). Nothing to write per insert; autovacuum's ANALYZE keeps them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def _pg_has_expression_statistics() -> bool:
    version = op.get_bind().exec_driver_sql("SHOW server_version_num").scalar()
    return int(str(version)) >= 140000


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.create_index(
            "ix_call_day", "call",
            [sa.text("date(start)"), "caller_extension", "billable_seconds", "cost"],
        )
    elif dialect == "postgresql" and _pg_has_expression_statistics():
        op.execute("CREATE STATISTICS st_call_day ON (date(start)) FROM call")
        op.execute("ANALYZE call")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.drop_index("ix_call_day", table_name="call")
    elif dialect == "postgresql":
        op.execute("DROP STATISTICS IF EXISTS st_call_day")
