"""work items carry their store and priority, so claims go round the stores and live pictures first

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04

Two columns, no rewrite of old rows' meaning: a null store is "no store" (sweeps, chat), and the priority
of rows queued before this migration is the middle one (5), as every kind had until now.
"""
from alembic import op
import sqlalchemy as sa


revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('work_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('store_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('priority', sa.SmallInteger(), nullable=False, server_default='5'))


def downgrade() -> None:
    with op.batch_alter_table('work_items', schema=None) as batch_op:
        batch_op.drop_column('priority')
        batch_op.drop_column('store_id')
