"""pattern facts: transaction kinds, window indexes, daily pattern counts; entrance rule evaluations

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

The window indexes serve the rolling counts; the composite card index replaces the single one.
"""
from alembic import op
import sqlalchemy as sa


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


WINDOW_INDEXES = {
    'ix_transactions_card_window': ['card_fingerprint', 'occurred_at'],
    'ix_transactions_card_type_window': ['card_fingerprint', 'type', 'occurred_at'],
    'ix_transactions_cashier_window': ['store_id', 'cashier_id', 'occurred_at'],
    'ix_transactions_register_window': ['store_id', 'register_id', 'occurred_at'],
    'ix_transactions_store_type_window': ['store_id', 'type', 'occurred_at'],
}


def upgrade() -> None:
    op.create_table('pattern_counts',
    sa.Column('store_id', sa.String(length=64), nullable=False),
    sa.Column('dimension', sa.String(length=8), nullable=False),
    sa.Column('subject', sa.String(length=128), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.PrimaryKeyConstraint('store_id', 'dimension', 'subject', 'day', 'kind', name=op.f('pk_pattern_counts'))
    )
    with op.batch_alter_table('pattern_counts', schema=None) as batch_op:
        batch_op.create_index('ix_pattern_counts_baseline', ['store_id', 'dimension', 'day'], unique=False)

    with op.batch_alter_table('snapshots', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rule_results', sa.JSON(), nullable=True))

    with op.batch_alter_table('transactions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('original_transaction_id', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('approver_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('adjustment_amount', sa.Numeric(precision=18, scale=4), nullable=False,
                                      server_default="0"))
        batch_op.add_column(sa.Column('pattern_facts', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('placed', sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column('under_rung', sa.Boolean(), nullable=False, server_default=sa.false()))
    # Stored at intake for an unknown store or register: skipped before any triage.
    op.execute("UPDATE transactions SET placed = false WHERE status = 'skipped' AND triage_decision IS NULL")

    if op.get_context().dialect.name == "postgresql":
        # CONCURRENTLY, outside the migration's transaction: the POS intake keeps inserting while
        # months of transactions are indexed (a plain CREATE INDEX would block it for the whole build).
        with op.get_context().autocommit_block():
            for name, columns in WINDOW_INDEXES.items():
                op.create_index(name, 'transactions', columns, unique=False, postgresql_concurrently=True,
                                if_not_exists=True)
            op.drop_index('ix_transactions_card_fingerprint', table_name='transactions',
                          postgresql_concurrently=True, if_exists=True)
    else:
        with op.batch_alter_table('transactions', schema=None) as batch_op:
            batch_op.drop_index(batch_op.f('ix_transactions_card_fingerprint'))
            for name, columns in WINDOW_INDEXES.items():
                batch_op.create_index(name, columns, unique=False)



def downgrade() -> None:
    with op.batch_alter_table('transactions', schema=None) as batch_op:
        batch_op.drop_index('ix_transactions_store_type_window')
        batch_op.drop_index('ix_transactions_register_window')
        batch_op.drop_index('ix_transactions_cashier_window')
        batch_op.drop_index('ix_transactions_card_type_window')
        batch_op.drop_index('ix_transactions_card_window')
        batch_op.create_index(batch_op.f('ix_transactions_card_fingerprint'), ['card_fingerprint'], unique=False)
        batch_op.drop_column('under_rung')
        batch_op.drop_column('placed')
        batch_op.drop_column('pattern_facts')
        batch_op.drop_column('adjustment_amount')
        batch_op.drop_column('approver_id')
        batch_op.drop_column('original_transaction_id')

    with op.batch_alter_table('snapshots', schema=None) as batch_op:
        batch_op.drop_column('rule_results')

    with op.batch_alter_table('pattern_counts', schema=None) as batch_op:
        batch_op.drop_index('ix_pattern_counts_baseline')

    op.drop_table('pattern_counts')
