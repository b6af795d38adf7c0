"""leases, inbound status, runtime state, report cache

Outbox rows claimed by a drain carry the drain's identity and a lease it renews, so a
second drain recovers only rows whose drain has stopped. Inbound SMS are stored before
they are handled (status, error), so a handler's bug cannot lose one. Processes share
small facts (the scheduler's heartbeat, a gateway-wide pause) in runtime_state; the
analytics report is kept in report_cache until its data change.

Revision ID: 5b1d0c7e9a21
Revises: 88e10bc11819
Create Date: 2026-12-04 14:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '5b1d0c7e9a21'
down_revision = '88e10bc11819'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbound_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('inbound_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=10), server_default='handled', nullable=False))
        batch_op.add_column(sa.Column('error', sa.Text(), nullable=True))
        batch_op.create_check_constraint('status_known', "status IN ('received', 'handled', 'error')")
    op.create_table(
        'runtime_state',
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('value', sa.JSON(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_runtime_state')),
    )
    op.create_table(
        'report_cache',
        sa.Column('key', sa.String(length=80), nullable=False),
        sa.Column('fingerprint', sa.String(length=400), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_report_cache')),
    )


def downgrade() -> None:
    op.drop_table('report_cache')
    op.drop_table('runtime_state')
    with op.batch_alter_table('inbound_message', schema=None) as batch_op:
        batch_op.drop_constraint('status_known', type_='check')
        batch_op.drop_column('error')
        batch_op.drop_column('status')
    with op.batch_alter_table('outbound_message', schema=None) as batch_op:
        batch_op.drop_column('lease_until')
        batch_op.drop_column('claimed_by')
