"""accumulation records and refine logs

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 21:50:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('jam_accumulations',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('service_id', sa.BigInteger(), nullable=False),
    sa.Column('package_id', sa.LargeBinary(length=32), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('gas_limit', sa.BigInteger(), nullable=False),
    sa.Column('gas_used', sa.BigInteger(), nullable=False),
    sa.Column('inputs', sa.BigInteger(), nullable=False),
    sa.Column('yield_hash', sa.LargeBinary(length=32), nullable=True),
    sa.Column('output', sa.LargeBinary(), nullable=True),
    sa.Column('logs', sa.Text(), nullable=False),
    sa.Column('logs_dropped', sa.BigInteger(), nullable=False),
    sa.Column('transfers', sa.Text(), nullable=False),
    sa.Column('transfers_in', sa.Text(), nullable=False),
    sa.Column('created', sa.Text(), nullable=False),
    sa.Column('ejected', sa.Text(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    with op.batch_alter_table('jam_accumulations', schema=None) as batch_op:
        batch_op.create_index('ix_jam_accumulations_package', ['package_id'], unique=False)
        batch_op.create_index('ix_jam_accumulations_service_seq', ['service_id', 'seq'],
                              unique=False)
    with op.batch_alter_table('jam_reports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('logs', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('jam_reports', schema=None) as batch_op:
        batch_op.drop_column('logs')
    with op.batch_alter_table('jam_accumulations', schema=None) as batch_op:
        batch_op.drop_index('ix_jam_accumulations_service_seq')
        batch_op.drop_index('ix_jam_accumulations_package')
    op.drop_table('jam_accumulations')
