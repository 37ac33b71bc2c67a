"""face evaluations: the last accuracy measurement of the face backend and its thresholds

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa


revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'face_evaluations',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('backend', sa.String(length=16), nullable=False),
        sa.Column('match_threshold', sa.Float(), nullable=False),
        sa.Column('review_threshold', sa.Float(), nullable=False),
        sa.Column('people', sa.Integer(), nullable=False),
        sa.Column('photos', sa.Integer(), nullable=False),
        sa.Column('genuine_comparisons', sa.Integer(), nullable=False),
        sa.Column('impostor_comparisons', sa.Integer(), nullable=False),
        sa.Column('refused_photos', sa.Integer(), nullable=False),
        sa.Column('figures', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_face_evaluations')),
    )
    with op.batch_alter_table('face_evaluations', schema=None) as batch_op:
        batch_op.create_index('ix_face_evaluations_backend_finished', ['backend', 'finished_at'], unique=False)


def downgrade() -> None:
    op.drop_table('face_evaluations')
