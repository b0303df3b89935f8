"""holds know their pbx

Several PBXs on one ledger: recovery after an AMI gap reconciles only the holds of its own
PBX's calls ([pbx] name), never another PBX's live calls.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('reservation', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("pbx", sa.String(length=64), server_default="", nullable=False)
        )
        batch_op.create_index(batch_op.f("ix_reservation_pbx"), ["pbx"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reservation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reservation_pbx"))
        batch_op.drop_column("pbx")
