"""every hold has one life

- A hold is one authorization: a channel may hold several (it dialled twice), each known by
  the token the gate made for it; closed holds stay, in state settled, released or undone.
- A call record is one Dial, known by (PBX, uniqueid, leg); its debit refers to the record
  ("call:<id>"), so two PBXs whose uniqueids collide, or one channel that dials twice, are
  each charged once per Dial.
- The database refuses negative reserved funds and negative holds.
- Ledger entries carry a MAC chain (the column and the chain's head; the entries already
  there are sealed by the first daemon or command holding the key).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def _statistics_index_again() -> None:
    """SQLite's batch mode rebuilds `call` and cannot carry migration 0002's expression index
    over (it is not reflected): build it again."""
    if op.get_bind().dialect.name == "sqlite":
        op.create_index(
            "ix_call_day", "call",
            [sa.text("date(start)"), "caller_extension", "billable_seconds", "cost"],
        )


def upgrade() -> None:
    # The release races this revision ends could leave negative holds and reserved funds:
    # repaired to what the holds say, so that the constraints below can be added.
    op.execute("UPDATE reservation SET amount = 0 WHERE amount < 0")
    op.execute(
        "UPDATE extension SET reserved = COALESCE((SELECT SUM(amount) FROM reservation "
        "WHERE reservation.extension_id = extension.id), 0)"
    )
    with op.batch_alter_table('reservation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('closed_at', sa.DateTime(), nullable=True))
    op.execute("UPDATE reservation SET token = 'legacy-' || CAST(id AS VARCHAR(20))")
    with op.batch_alter_table('reservation', schema=None) as batch_op:
        batch_op.alter_column('token', existing_type=sa.String(length=32), nullable=False)
        batch_op.drop_constraint('uq_reservation_uniqueid', type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_reservation_token'), ['token'])
        batch_op.create_index('ix_reservation_pbx_uniqueid', ['pbx', 'uniqueid'], unique=False)
        batch_op.create_index('ix_reservation_state', ['state'], unique=False)
        batch_op.create_check_constraint('amount_not_negative', 'amount >= 0')

    with op.batch_alter_table('extension', schema=None) as batch_op:
        batch_op.create_check_constraint('reserved_not_negative', 'reserved >= 0')

    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("pbx", sa.String(length=64), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("leg", sa.String(length=128), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("reservation_id", sa.Integer(), nullable=True))
        batch_op.drop_constraint("uq_call_uniqueid", type_="unique")
        batch_op.create_index(batch_op.f("ix_call_uniqueid"), ["uniqueid"], unique=False)
        batch_op.create_unique_constraint("uq_call_pbx_uniqueid_leg", ["pbx", "uniqueid", "leg"])
    _statistics_index_again()
    # A debit names its call record now, not the uniqueid two PBXs may share.
    op.execute(
        "UPDATE ledger_entry SET reference = 'call:' || CAST(("
        "SELECT call.id FROM call WHERE call.uniqueid = ledger_entry.reference) AS VARCHAR(20)) "
        "WHERE kind = 'call_debit' AND EXISTS ("
        "SELECT 1 FROM call WHERE call.uniqueid = ledger_entry.reference)"
    )

    with op.batch_alter_table("ledger_entry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mac", sa.String(length=64), nullable=True))
    op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_entry_id", sa.Integer(), nullable=False),
        sa.Column("last_mac", sa.String(length=64), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("mac", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_head")),
    )
    # The chain's head starts empty; entries already there are sealed with the key later.
    op.execute(
        "INSERT INTO ledger_head (id, last_entry_id, last_mac, entries, mac) "
        "VALUES (1, 0, '', 0, '')"
    )


def downgrade() -> None:
    op.drop_table("ledger_head")
    with op.batch_alter_table("ledger_entry", schema=None) as batch_op:
        batch_op.drop_column("mac")
    # Back to one record per uniqueid: the first Dial of each channel keeps its record.
    op.execute("DELETE FROM call WHERE id NOT IN (SELECT MIN(id) FROM call GROUP BY uniqueid)")
    op.execute(
        "UPDATE ledger_entry SET reference = (SELECT call.uniqueid FROM call "
        "WHERE 'call:' || CAST(call.id AS VARCHAR(20)) = ledger_entry.reference) "
        "WHERE kind = 'call_debit' AND reference LIKE 'call:%'"
    )
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.drop_constraint("uq_call_pbx_uniqueid_leg", type_="unique")
        batch_op.drop_index(batch_op.f("ix_call_uniqueid"))
        batch_op.create_unique_constraint(batch_op.f("uq_call_uniqueid"), ["uniqueid"])
        batch_op.drop_column("reservation_id")
        batch_op.drop_column("leg")
        batch_op.drop_column("pbx")
    _statistics_index_again()
    with op.batch_alter_table("extension", schema=None) as batch_op:
        batch_op.drop_constraint("reserved_not_negative", type_="check")
    # Only open holds go back; a channel keeps its newest.
    op.execute("DELETE FROM reservation WHERE state NOT IN ('held', 'flagged')")
    op.execute(
        "DELETE FROM reservation"
        " WHERE id NOT IN (SELECT MAX(id) FROM reservation GROUP BY uniqueid)"
    )
    with op.batch_alter_table("reservation", schema=None) as batch_op:
        batch_op.drop_constraint("amount_not_negative", type_="check")
        batch_op.drop_index("ix_reservation_state")
        batch_op.drop_index("ix_reservation_pbx_uniqueid")
        batch_op.drop_constraint(batch_op.f("uq_reservation_token"), type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_reservation_uniqueid"), ["uniqueid"])
        batch_op.drop_column("closed_at")
        batch_op.drop_column("token")
