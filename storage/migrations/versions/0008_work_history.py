"""finished steps leave the claimable table for work_history; partial indexes for the claim, archival, dead list

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05

No rows move here: on a big table that would hold the migration's lock for minutes. The archive sweep moves
the done rows in batches after start (docs/decisions.md, "The work table stays small"); until then the partial
indexes already keep the claim off them. Building the indexes reads the table once (seconds for 10M rows).
Downgrade puts the history back into work_items as done rows, so the old dedupe still holds.
"""
from alembic import op
import sqlalchemy as sa


revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

CLAIMABLE = "status IN ('pending', 'running')"


def _partial(predicate: str) -> dict:
    return {"postgresql_where": sa.text(predicate), "sqlite_where": sa.text(predicate)}


def upgrade() -> None:
    op.create_table('work_history',
    sa.Column('dedupe_key', sa.String(length=200), nullable=False),
    sa.Column('item_id', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('transaction_id', sa.String(length=128), nullable=True),
    sa.Column('ref_id', sa.String(length=128), nullable=True),
    sa.Column('store_id', sa.String(length=64), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=1000), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('dedupe_key', name=op.f('pk_work_history'))
    )
    with op.batch_alter_table('work_history', schema=None) as batch_op:
        batch_op.create_index('ix_work_history_kind_ref', ['kind', 'ref_id'], unique=False)
        batch_op.create_index('ix_work_history_completed', ['completed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_work_history_transaction_id'), ['transaction_id'], unique=False)

    with op.batch_alter_table('work_items', schema=None) as batch_op:
        batch_op.drop_index('ix_work_items_due')
        batch_op.create_index('ix_work_items_claimable', ['kind', 'next_run_at'], unique=False, **_partial(CLAIMABLE))
        batch_op.create_index('ix_work_items_finished', ['completed_at'], unique=False, **_partial("status = 'done'"))
        batch_op.create_index('ix_work_items_dead', ['completed_at'], unique=False, **_partial("status = 'dead'"))


def downgrade() -> None:
    op.execute(
        "INSERT INTO work_items (kind, dedupe_key, transaction_id, ref_id, store_id, priority, status, next_run_at, "
        "attempts, last_error, created_at, completed_at) "
        "SELECT kind, dedupe_key, transaction_id, ref_id, store_id, 5, 'done', completed_at, attempts, last_error, "
        "created_at, completed_at FROM work_history WHERE true ON CONFLICT (dedupe_key) DO NOTHING"
    )
    with op.batch_alter_table('work_items', schema=None) as batch_op:
        batch_op.drop_index('ix_work_items_dead')
        batch_op.drop_index('ix_work_items_finished')
        batch_op.drop_index('ix_work_items_claimable')
        batch_op.create_index('ix_work_items_due', ['status', 'next_run_at'], unique=False)

    with op.batch_alter_table('work_history', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_work_history_transaction_id'))
        batch_op.drop_index('ix_work_history_completed')
        batch_op.drop_index('ix_work_history_kind_ref')

    op.drop_table('work_history')
