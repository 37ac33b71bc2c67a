"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 14:56:07.873293
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alerts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('dedupe_key', sa.String(length=200), nullable=False),
    sa.Column('transaction_id', sa.String(length=128), nullable=True),
    sa.Column('store_id', sa.String(length=64), nullable=False),
    sa.Column('register_id', sa.String(length=64), nullable=True),
    sa.Column('camera_serial', sa.String(length=20), nullable=True),
    sa.Column('snapshot_id', sa.String(length=32), nullable=True),
    sa.Column('rule', sa.String(length=64), nullable=False),
    sa.Column('severity', sa.String(length=8), nullable=False),
    sa.Column('message', sa.String(length=500), nullable=False),
    sa.Column('facts', sa.JSON(), nullable=False),
    sa.Column('person_id', sa.String(length=32), nullable=True),
    sa.Column('similarity', sa.Double(), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('decided_by', sa.String(length=254), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.String(length=20), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_alerts_dedupe_key'))
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alerts_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_store_id'), ['store_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_transaction_id'), ['transaction_id'], unique=False)

    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=254), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('subject_type', sa.String(length=20), nullable=False),
    sa.Column('subject_id', sa.String(length=128), nullable=False),
    sa.Column('store_id', sa.String(length=64), nullable=True),
    sa.Column('reason_code', sa.String(length=40), nullable=True),
    sa.Column('outcome', sa.String(length=12), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_at'), ['at'], unique=False)

    op.create_table('evidence_files',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('content_type', sa.String(length=40), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sha256', name=op.f('pk_evidence_files'))
    )
    op.create_table('inbound_events',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('handled_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_events'))
    )
    with op.batch_alter_table('inbound_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbound_events_received_at'), ['received_at'], unique=False)

    op.create_table('rate_buckets',
    sa.Column('org_id', sa.String(length=64), nullable=False),
    sa.Column('tokens', sa.Double(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('blocked_until', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('org_id', name=op.f('pk_rate_buckets'))
    )
    op.create_table('transactions',
    sa.Column('transaction_id', sa.String(length=128), nullable=False),
    sa.Column('store_id', sa.String(length=64), nullable=False),
    sa.Column('register_id', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=20), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('total_amount', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('payment_method', sa.String(length=10), nullable=False),
    sa.Column('entry_mode', sa.String(length=12), nullable=True),
    sa.Column('card_fingerprint', sa.String(length=128), nullable=True),
    sa.Column('risk_score', sa.Integer(), nullable=True),
    sa.Column('cashier_id', sa.String(length=64), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('body_sha256', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('status_reason', sa.String(length=500), nullable=True),
    sa.Column('triage_decision', sa.String(length=8), nullable=True),
    sa.Column('triage_reason', sa.String(length=500), nullable=True),
    sa.Column('reconciliation', sa.JSON(), nullable=True),
    sa.Column('rule_results', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('transaction_id', name=op.f('pk_transactions'))
    )
    with op.batch_alter_table('transactions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transactions_card_fingerprint'), ['card_fingerprint'], unique=False)
        batch_op.create_index(batch_op.f('ix_transactions_occurred_at'), ['occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_transactions_store_id'), ['store_id'], unique=False)

    op.create_table('watchlist_people',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('store_id', sa.String(length=64), nullable=False),
    sa.Column('region_id', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('source_transaction_id', sa.String(length=128), nullable=True),
    sa.Column('enrolled_by', sa.String(length=254), nullable=False),
    sa.Column('approved_by', sa.String(length=254), nullable=True),
    sa.Column('enrolled_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('backend_user_id', sa.String(length=255), nullable=True),
    sa.Column('wrong_match_count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_watchlist_people'))
    )
    op.create_table('work_items',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('dedupe_key', sa.String(length=200), nullable=False),
    sa.Column('transaction_id', sa.String(length=128), nullable=True),
    sa.Column('ref_id', sa.String(length=128), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('next_run_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('lease_token', sa.String(length=32), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=1000), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_work_items')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_work_items_dedupe_key'))
    )
    with op.batch_alter_table('work_items', schema=None) as batch_op:
        batch_op.create_index('ix_work_items_due', ['status', 'next_run_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_work_items_transaction_id'), ['transaction_id'], unique=False)

    op.create_table('fraud_reports',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('transaction_id', sa.String(length=128), nullable=False),
    sa.Column('source', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('reported_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reported_by', sa.String(length=254), nullable=True),
    sa.Column('body_sha256', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['transaction_id'], ['transactions.transaction_id'], name=op.f('fk_fraud_reports_transaction_id_transactions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fraud_reports')),
    sa.UniqueConstraint('transaction_id', 'source', name=op.f('uq_fraud_reports_transaction_id'))
    )
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('dedupe_key', sa.String(length=200), nullable=False),
    sa.Column('room_id', sa.String(length=200), nullable=False),
    sa.Column('parent_outbox_id', sa.Integer(), nullable=True),
    sa.Column('alert_id', sa.Integer(), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('file_sha256', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('webex_message_id', sa.String(length=200), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.String(length=1000), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], name=op.f('fk_outbox_alert_id_alerts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['file_sha256'], ['evidence_files.sha256'], name=op.f('fk_outbox_file_sha256_evidence_files')),
    sa.ForeignKeyConstraint(['parent_outbox_id'], ['outbox.id'], name=op.f('fk_outbox_parent_outbox_id_outbox')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_outbox_dedupe_key'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_alert_id'), ['alert_id'], unique=False)

    op.create_table('snapshots',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('transaction_id', sa.String(length=128), nullable=True),
    sa.Column('store_id', sa.String(length=64), nullable=False),
    sa.Column('camera_serial', sa.String(length=20), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('taken_for', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('evidence_sha256', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ready_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['evidence_sha256'], ['evidence_files.sha256'], name=op.f('fk_snapshots_evidence_sha256_evidence_files')),
    sa.ForeignKeyConstraint(['transaction_id'], ['transactions.transaction_id'], name=op.f('fk_snapshots_transaction_id_transactions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_snapshots'))
    )
    with op.batch_alter_table('snapshots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_snapshots_transaction_id'), ['transaction_id'], unique=False)

    op.create_table('watchlist_faces',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('descriptor', sa.LargeBinary(), nullable=True),
    sa.Column('backend', sa.String(length=16), nullable=False),
    sa.Column('backend_face_id', sa.String(length=64), nullable=True),
    sa.Column('enrollment_image_sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['enrollment_image_sha256'], ['evidence_files.sha256'], name=op.f('fk_watchlist_faces_enrollment_image_sha256_evidence_files')),
    sa.ForeignKeyConstraint(['person_id'], ['watchlist_people.id'], name=op.f('fk_watchlist_faces_person_id_watchlist_people'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_watchlist_faces'))
    )
    with op.batch_alter_table('watchlist_faces', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_watchlist_faces_person_id'), ['person_id'], unique=False)

    op.create_table('faces',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('snapshot_id', sa.String(length=32), nullable=False),
    sa.Column('box', sa.JSON(), nullable=False),
    sa.Column('quality', sa.Double(), nullable=False),
    sa.Column('in_customer_zone', sa.Boolean(), nullable=False),
    sa.Column('crop_sha256', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['crop_sha256'], ['evidence_files.sha256'], name=op.f('fk_faces_crop_sha256_evidence_files')),
    sa.ForeignKeyConstraint(['snapshot_id'], ['snapshots.id'], name=op.f('fk_faces_snapshot_id_snapshots'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_faces'))
    )
    with op.batch_alter_table('faces', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_faces_snapshot_id'), ['snapshot_id'], unique=False)

    op.create_table('face_matches',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('face_id', sa.String(length=32), nullable=False),
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('similarity', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['face_id'], ['faces.id'], name=op.f('fk_face_matches_face_id_faces'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['watchlist_people.id'], name=op.f('fk_face_matches_person_id_watchlist_people'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_face_matches')),
    sa.UniqueConstraint('face_id', 'person_id', name=op.f('uq_face_matches_face_id'))
    )
    with op.batch_alter_table('face_matches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_face_matches_face_id'), ['face_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_face_matches_person_id'), ['person_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('face_matches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_face_matches_person_id'))
        batch_op.drop_index(batch_op.f('ix_face_matches_face_id'))

    op.drop_table('face_matches')
    with op.batch_alter_table('faces', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_faces_snapshot_id'))

    op.drop_table('faces')
    with op.batch_alter_table('watchlist_faces', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_watchlist_faces_person_id'))

    op.drop_table('watchlist_faces')
    with op.batch_alter_table('snapshots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_snapshots_transaction_id'))

    op.drop_table('snapshots')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_alert_id'))

    op.drop_table('outbox')
    op.drop_table('fraud_reports')
    with op.batch_alter_table('work_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_work_items_transaction_id'))
        batch_op.drop_index('ix_work_items_due')

    op.drop_table('work_items')
    op.drop_table('watchlist_people')
    with op.batch_alter_table('transactions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transactions_store_id'))
        batch_op.drop_index(batch_op.f('ix_transactions_occurred_at'))
        batch_op.drop_index(batch_op.f('ix_transactions_card_fingerprint'))

    op.drop_table('transactions')
    op.drop_table('rate_buckets')
    with op.batch_alter_table('inbound_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_events_received_at'))

    op.drop_table('inbound_events')
    op.drop_table('evidence_files')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_at'))

    op.drop_table('audit_log')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alerts_transaction_id'))
        batch_op.drop_index(batch_op.f('ix_alerts_store_id'))
        batch_op.drop_index(batch_op.f('ix_alerts_created_at'))

    op.drop_table('alerts')
