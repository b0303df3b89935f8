"""rates beyond the appliance: days, holidays, dated decks, split, buy rates

Issue 17. A rate gains its calendar (`days`: "" for every day, else "mon,sat,…";
`holidays`: any, only or except), the span of its deck (`valid_from` included,
`valid_until` excluded, local time; NULL: open), `split` (charge each period at the rate in
force when it starts, rating/split.py) and `trunk` (NULL: a sell rate; a trunk's name, or "*",
makes it a buy rate: what the carrier on that trunk charges). The holiday calendar is a table
of its own. A hold keeps the tariffs in force over its limit when its rate splits
(`tariff_schedule`, "" otherwise) so settlement charges what the gate held; a call record
carries its buy cost (NULL: no buy rate known for its trunk).

Back again, the rates the older schema cannot hold faithfully are not left to charge what they
never meant to: buy rates are deleted (without `trunk` they would sell calls), and a rate
limited to some days, to holidays or to a span not in force now is disabled (it would apply
every day, at any date), to be enabled again by the operator if wanted.

Columns are added, and dropped again, with plain ALTER TABLE: on SQLite a batch operation
would copy the `call` table and lose the keyword index's triggers (0006); SQLite 3.35 and
later drop a column in place.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

COLUMNS: dict[str, list[sa.Column[Any]]] = {
    "rate": [
        sa.Column("days", sa.String(length=32), server_default="", nullable=False),
        sa.Column("holidays", sa.String(length=8), server_default="any", nullable=False),
        sa.Column("valid_from", sa.DateTime(), nullable=True),
        sa.Column("valid_until", sa.DateTime(), nullable=True),
        sa.Column("split", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("trunk", sa.String(length=64), nullable=True),
    ],
    "reservation": [
        sa.Column("tariff_schedule", sa.Text(), server_default="", nullable=False),
    ],
    "call": [
        sa.Column("buy_cost", sa.BigInteger(), nullable=True),
    ],
}


def upgrade() -> None:
    for table, columns in COLUMNS.items():
        for column in columns:
            op.add_column(table, column)
    op.create_table(
        "holiday",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("yearly", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holiday")),
        sa.UniqueConstraint("day", "yearly", name="uq_holiday_day_yearly"),
    )


def _local_now(bind: sa.Connection) -> datetime:
    """Now in the PBX's zone as the ledger sets it (rates' spans are in its local time); no
    zone set: the machine's own."""
    zone = bind.execute(sa.text("SELECT value FROM setting WHERE key = 'timezone'")).scalar()
    try:
        now = datetime.now(ZoneInfo(zone)) if zone else datetime.now().astimezone()
    except (ZoneInfoNotFoundError, ValueError):
        now = datetime.now().astimezone()
    return now.replace(tzinfo=None)


def _keep_what_the_old_rates_mean(bind: sa.Connection) -> None:
    bind.execute(sa.text("DELETE FROM rate WHERE trunk IS NOT NULL"))
    bind.execute(sa.text(
        "UPDATE rate SET enabled = :off WHERE days <> '' OR holidays <> 'any'"
        " OR valid_from > :now OR valid_until <= :now"
    ).bindparams(sa.bindparam("off", False, type_=sa.Boolean()),
                 sa.bindparam("now", _local_now(bind), type_=sa.DateTime())))


def downgrade() -> None:
    bind = op.get_bind()
    _keep_what_the_old_rates_mean(bind)
    op.drop_table("holiday")
    sqlite = bind.dialect.name == "sqlite"
    for table, columns in COLUMNS.items():
        for column in columns:
            if sqlite:
                op.execute(f'ALTER TABLE "{table}" DROP COLUMN {column.name}')
            else:
                op.drop_column(table, column.name)
