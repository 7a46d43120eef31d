"""exported segments kept for imports

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 01:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('jam_export_sets',
    sa.Column('service_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('package_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('segments_root', sa.LargeBinary(length=32), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('service_id', 'package_hash')
    )
    with op.batch_alter_table('jam_export_sets', schema=None) as batch_op:
        batch_op.create_index('ix_jam_export_sets_root', ['service_id', 'segments_root'],
                              unique=False)
        batch_op.create_index('ix_jam_export_sets_expires', ['expires_at'], unique=False)
    op.create_table('jam_segments',
    sa.Column('service_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('package_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('idx', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('service_id', 'package_hash', 'idx')
    )


def downgrade() -> None:
    op.drop_table('jam_segments')
    with op.batch_alter_table('jam_export_sets', schema=None) as batch_op:
        batch_op.drop_index('ix_jam_export_sets_expires')
        batch_op.drop_index('ix_jam_export_sets_root')
    op.drop_table('jam_export_sets')
