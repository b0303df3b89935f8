"""webhook outbox; recurring fees

- webhook_event: the outbox (services/outbox.py). An event is written in the transaction of
  the change it tells of and delivered by the daemon, in order within each extension.
- fee: recurring fees (services/fees.py), each charge a ledger entry of kind "fee".
- recharge.kind: "recharge", or "fee" for a fee charged (shown among the recharge records),
  and recharge.reference: a fee's ledger entry (`coobill audit` matches the two).

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'webhook_event',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('extension', sa.String(length=32), nullable=False),
        sa.Column('payload', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
        sa.Column('delivered_to', sa.Text(), nullable=False),
        sa.Column('last_error', sa.String(length=255), nullable=False),
        sa.Column('delivered_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_event')),
        sa.UniqueConstraint('key', name=op.f('uq_webhook_event_key')),
    )
    with op.batch_alter_table('webhook_event', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_event_state_id', ['state', 'id'], unique=False)
        batch_op.create_index('ix_webhook_event_extension_id', ['extension', 'id'], unique=False)
    op.create_table(
        'fee',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('extension', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('period', sa.String(length=16), nullable=False),
        sa.Column('over_credit', sa.String(length=16), nullable=False),
        sa.Column('starts', sa.DateTime(), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_fee')),
    )
    with op.batch_alter_table('recharge', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), nullable=False,
                                      server_default='recharge'))
        batch_op.add_column(sa.Column('reference', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('recharge', schema=None) as batch_op:
        batch_op.drop_column('reference')
        batch_op.drop_column('kind')
    op.drop_table('fee')
    with op.batch_alter_table('webhook_event', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_event_extension_id')
        batch_op.drop_index('ix_webhook_event_state_id')
    op.drop_table('webhook_event')
