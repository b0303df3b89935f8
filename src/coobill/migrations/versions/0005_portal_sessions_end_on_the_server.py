"""portal sessions end on the server

- A logged-in portal session is a row (portal_session): logout deletes it and a new password
  outlives none made before it, so a copied cookie stops working when its session ends.
- The key that signs session cookies leaves the ledger (the setting web_secret_key): it is
  a file beside the ledger key now (storage/ledger_key.py), so reading the database is no
  longer enough to forge a cookie. Sessions signed with the old key end here.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'portal_session',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['portal_user.id'],
                                name=op.f('fk_portal_session_user_id_portal_user'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_portal_session')),
    )
    with op.batch_alter_table('portal_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_portal_session_user_id'), ['user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_portal_session_expires_at'), ['expires_at'],
                              unique=False)
    op.execute("DELETE FROM setting WHERE key = 'web_secret_key'")


def downgrade() -> None:
    # The old code makes a new signing key in the ledger on its first start.
    with op.batch_alter_table('portal_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_portal_session_expires_at'))
        batch_op.drop_index(batch_op.f('ix_portal_session_user_id'))
    op.drop_table('portal_session')
