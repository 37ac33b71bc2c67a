"""process leases: one Webex websocket and a fair share of entrance cameras per process, elected in the database

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa


revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'process_leases',
        sa.Column('name', sa.String(length=120), nullable=False),
        sa.Column('holder', sa.String(length=120), nullable=False),
        sa.Column('lease_until', sa.DateTime(timezone=True), nullable=False),
        sa.Column('since', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_process_leases')),
    )


def downgrade() -> None:
    op.drop_table('process_leases')
