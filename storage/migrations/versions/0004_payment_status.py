"""payment status changes from the processors (Square payment.updated)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

Three nullable columns, no index and no rewrite: null means the posted body's payment.status holds.
"""
from alembic import op
import sqlalchemy as sa


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('transactions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payment_status', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('payment_status_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('payment_version', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('transactions', schema=None) as batch_op:
        batch_op.drop_column('payment_version')
        batch_op.drop_column('payment_status_at')
        batch_op.drop_column('payment_status')
