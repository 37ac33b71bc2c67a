"""outbox messages record when they failed, so `status` counts failures by when they happened

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05

A message queued days ago that fails now is a failure of today. Rows that failed before this migration
get their creation time, the best that is known of them.
"""
from alembic import op
import sqlalchemy as sa


revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE outbox SET failed_at = created_at WHERE status = 'failed'")


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('failed_at')
