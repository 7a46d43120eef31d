"""a service's last claim in a table of its own (issue 14: the finish's lock order)

The claim writes `last_claimed` while it holds the account row; in jam_services that write
waited for the service row, which a finish holds through its apply. Moved out, the finish can
take the account row last, just before its commit (docs/scheduling.md, "What a claim costs").

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 16:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'jam_service_claims',
        sa.Column('service_id', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('last_claimed', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('service_id'),
    )
    op.execute("""
        INSERT INTO jam_service_claims (service_id, last_claimed)
        SELECT service_id, last_claimed FROM jam_services WHERE last_claimed <> 0
    """)
    with op.batch_alter_table('jam_services', schema=None) as batch_op:
        batch_op.drop_column('last_claimed')


def downgrade() -> None:
    with op.batch_alter_table('jam_services', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_claimed', sa.BigInteger(), server_default='0',
                                      nullable=False))
    op.execute("""
        UPDATE jam_services SET last_claimed = COALESCE((
            SELECT c.last_claimed FROM jam_service_claims c
            WHERE c.service_id = jam_services.service_id), 0)
    """)
    op.drop_table('jam_service_claims')
