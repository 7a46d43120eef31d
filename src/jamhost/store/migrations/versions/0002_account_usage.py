"""per-account usage and fair-scheduler state (issues 12 and 14)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 21:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'jam_account_usage',
        sa.Column('owner', sa.String(length=200), nullable=False),
        sa.Column('services', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('pending', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('queued', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('running', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('vtime', sa.BigInteger(), server_default='0', nullable=False),
        sa.PrimaryKeyConstraint('owner'),
    )
    with op.batch_alter_table('jam_account_usage', schema=None) as batch_op:
        batch_op.create_index('ix_jam_account_usage_vtime', ['vtime'], unique=False)
    with op.batch_alter_table('jam_services', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_claimed', sa.BigInteger(), server_default='0',
                                      nullable=False))
    with op.batch_alter_table('jam_packages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('started_at', sa.BigInteger(), nullable=True))
    # Existing deployments: the counters from the rows they summarize.
    op.execute("""
        INSERT INTO jam_account_usage (owner, services, pending, queued, running, vtime)
        SELECT s.owner, COUNT(*),
               COALESCE(SUM((SELECT COUNT(*) FROM jam_packages p WHERE p.service_id = s.service_id
                             AND p.status IN ('pending', 'refining'))), 0),
               COALESCE(SUM((SELECT COUNT(*) FROM jam_packages p WHERE p.service_id = s.service_id
                             AND p.status = 'pending')), 0),
               COALESCE(SUM((SELECT COUNT(*) FROM jam_packages p WHERE p.service_id = s.service_id
                             AND p.status = 'refining')), 0),
               0
        FROM jam_services s GROUP BY s.owner
    """)


def downgrade() -> None:
    with op.batch_alter_table('jam_packages', schema=None) as batch_op:
        batch_op.drop_column('started_at')
    with op.batch_alter_table('jam_services', schema=None) as batch_op:
        batch_op.drop_column('last_claimed')
    with op.batch_alter_table('jam_account_usage', schema=None) as batch_op:
        batch_op.drop_index('ix_jam_account_usage_vtime')
    op.drop_table('jam_account_usage')
