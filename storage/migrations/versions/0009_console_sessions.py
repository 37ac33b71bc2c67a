"""console sessions: signing out ends the session on the server, not only in the browser

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa


revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'console_sessions',
        sa.Column('id_sha256', sa.String(length=64), nullable=False),
        sa.Column('email', sa.String(length=320), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id_sha256', name=op.f('pk_console_sessions')),
    )
    with op.batch_alter_table('console_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_console_sessions_expires', ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_console_sessions_email'), ['email'], unique=False)


def downgrade() -> None:
    op.drop_table('console_sessions')
