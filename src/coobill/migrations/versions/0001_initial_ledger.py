"""initial ledger

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('call',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uniqueid', sa.String(length=64), nullable=False),
    sa.Column('caller_extension', sa.String(length=32), nullable=False),
    sa.Column('caller_name', sa.String(length=128), nullable=False),
    sa.Column('dialled_number', sa.String(length=64), nullable=False),
    sa.Column('start', sa.DateTime(), nullable=True),
    sa.Column('answer', sa.DateTime(), nullable=True),
    sa.Column('end', sa.DateTime(), nullable=True),
    sa.Column('billable_seconds', sa.Integer(), nullable=False),
    sa.Column('trunk', sa.String(length=64), nullable=False),
    sa.Column('rate_id', sa.Integer(), nullable=True),
    sa.Column('rate_label', sa.String(length=255), nullable=False),
    sa.Column('cost', sa.BigInteger(), nullable=False),
    sa.Column('disposition', sa.String(length=16), nullable=False),
    sa.Column('gated', sa.Boolean(), nullable=False),
    sa.Column('evidence', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call')),
    sa.UniqueConstraint('uniqueid', name=op.f('uq_call_uniqueid'))
    )
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.create_index('ix_call_caller_start', ['caller_extension', 'start'], unique=False)
        batch_op.create_index('ix_call_start', ['start'], unique=False)

    op.create_table('extension',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('billing_enabled', sa.Boolean(), nullable=False),
    sa.Column('payment', sa.String(length=16), nullable=False),
    sa.Column('credit_limit', sa.BigInteger(), nullable=False),
    sa.Column('balance', sa.BigInteger(), nullable=False),
    sa.Column('total_recharged', sa.BigInteger(), nullable=False),
    sa.Column('reserved', sa.BigInteger(), nullable=False, server_default='0'),
    sa.Column('locked', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_extension')),
    sa.UniqueConstraint('number', name=op.f('uq_extension_number'))
    )
    op.create_table('portal_user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_portal_user')),
    sa.UniqueConstraint('name', name=op.f('uq_portal_user_name'))
    )
    op.create_table('rate',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('remark', sa.String(length=255), nullable=False),
    sa.Column('prefix', sa.String(length=32), nullable=False),
    sa.Column('number_length', sa.Integer(), nullable=False),
    sa.Column('initial_cost', sa.BigInteger(), nullable=False),
    sa.Column('initial_seconds', sa.Integer(), nullable=False),
    sa.Column('rate', sa.BigInteger(), nullable=False),
    sa.Column('period_seconds', sa.Integer(), nullable=False),
    sa.Column('start_time', sa.String(length=5), nullable=False),
    sa.Column('end_time', sa.String(length=5), nullable=False),
    sa.Column('extensions', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rate'))
    )
    with op.batch_alter_table('rate', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rate_prefix'), ['prefix'], unique=False)

    op.create_table('setting',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_setting'))
    )
    op.create_table('ledger_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('extension_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('balance_after', sa.BigInteger(), nullable=False),
    sa.Column('reference', sa.String(length=64), nullable=True),
    sa.Column('who', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['extension_id'], ['extension.id'], name=op.f('fk_ledger_entry_extension_id_extension')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entry')),
    sa.UniqueConstraint('kind', 'reference', name='uq_ledger_entry_kind_reference')
    )
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_entry_extension_id'), ['extension_id'], unique=False)

    op.create_table('recharge',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('extension_id', sa.Integer(), nullable=False),
    sa.Column('balance_before', sa.BigInteger(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('balance_after', sa.BigInteger(), nullable=False),
    sa.Column('who', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['extension_id'], ['extension.id'], name=op.f('fk_recharge_extension_id_extension')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recharge'))
    )
    with op.batch_alter_table('recharge', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recharge_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_recharge_extension_id'), ['extension_id'], unique=False)

    op.create_table('reservation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uniqueid', sa.String(length=64), nullable=False),
    sa.Column('extension_id', sa.Integer(), nullable=True),
    sa.Column('extension_number', sa.String(length=32), nullable=False),
    sa.Column('number', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=128), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('billed', sa.Boolean(), nullable=False),
    sa.Column('limit_seconds', sa.Integer(), nullable=True),
    sa.Column('rate_id', sa.Integer(), nullable=True),
    sa.Column('tariff', sa.String(length=128), nullable=False),
    sa.Column('rate_label', sa.String(length=255), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('note', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['extension_id'], ['extension.id'], name=op.f('fk_reservation_extension_id_extension')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reservation')),
    sa.UniqueConstraint('uniqueid', name=op.f('uq_reservation_uniqueid'))
    )
    with op.batch_alter_table('reservation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reservation_extension_id'), ['extension_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('reservation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reservation_extension_id'))

    op.drop_table('reservation')
    with op.batch_alter_table('recharge', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recharge_extension_id'))
        batch_op.drop_index(batch_op.f('ix_recharge_created_at'))

    op.drop_table('recharge')
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_entry_extension_id'))

    op.drop_table('ledger_entry')
    op.drop_table('setting')
    with op.batch_alter_table('rate', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rate_prefix'))

    op.drop_table('rate')
    op.drop_table('portal_user')
    op.drop_table('extension')
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.drop_index('ix_call_start')
        batch_op.drop_index('ix_call_caller_start')

    op.drop_table('call')
