"""account controls: spend caps, low-balance alerts, refused calls

Issue 18 items 1, 2 and 5:
- extension: the spend caps (`cap_daily`, `cap_monthly`, `max_call_cost`,
  `max_price_minute`; NULL takes the site's default setting), what its calls were debited on
  the current day and month (`spent_day` for `spent_day_of`, `spent_month` for
  `spent_month_of`: the gate checks the caps on the row, as it checks the funds), the
  low-balance threshold and when the funds fell below it (`low_balance_since`).
- refused_call: one row per DENY of the gate, newest first by (at, id).

Revision ID: 0008
Revises: 0009
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0009'
branch_labels = None
depends_on = None

_CAPS = ('cap_daily', 'cap_monthly', 'max_call_cost', 'max_price_minute')


def upgrade() -> None:
    with op.batch_alter_table('extension', schema=None) as batch_op:
        for name in _CAPS:
            batch_op.add_column(sa.Column(name, sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('spent_day', sa.BigInteger(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('spent_day_of', sa.String(length=10), server_default='',
                                      nullable=False))
        batch_op.add_column(sa.Column('spent_month', sa.BigInteger(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('spent_month_of', sa.String(length=7), server_default='',
                                      nullable=False))
        batch_op.add_column(sa.Column('low_balance_threshold', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('low_balance_since', sa.DateTime(), nullable=True))
    op.create_table(
        'refused_call',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('pbx', sa.String(length=64), server_default='', nullable=False),
        sa.Column('uniqueid', sa.String(length=64), nullable=False),
        sa.Column('extension', sa.String(length=32), nullable=False),
        sa.Column('number', sa.String(length=64), nullable=False),
        sa.Column('reason', sa.String(length=32), nullable=False),
        sa.Column('latency_us', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_refused_call')),
    )
    op.create_index('ix_refused_call_at_id', 'refused_call', ['at', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_refused_call_at_id', table_name='refused_call')
    op.drop_table('refused_call')
    with op.batch_alter_table('extension', schema=None) as batch_op:
        for name in ('low_balance_since', 'low_balance_threshold', 'spent_month_of',
                     'spent_month', 'spent_day_of', 'spent_day', *reversed(_CAPS)):
            batch_op.drop_column(name)
