"""admin sessions, sign-in throttles, TOTP, simulated contacts and messages

Operators' sessions live in the database so that signing out, a new password or "sign
out everywhere" ends every copy of a session cookie, and idle and absolute time-outs
hold. Failed sign-ins are counted per (account, address) and per address in one row
each, shared by every worker. An operator may add a TOTP second factor. Contacts and
inbound messages played in the admin's phone simulator are marked simulated, and what is
queued for a simulated contact takes the final state ``simulated``: never handed to the
gateway, never counted in analytics.

Revision ID: 6a9f1c3e5d27
Revises: 5b1d0c7e9a21
Create Date: 2026-12-04 17:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '6a9f1c3e5d27'
down_revision = '5b1d0c7e9a21'
branch_labels = None
depends_on = None

SIMULATED = ('contact', 'inbound_message')
STATES = "'queued', 'sending', 'sent', 'delivered', 'failed', 'unknown'"


def upgrade() -> None:
    op.create_table(
        'admin_session',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('end_reason', sa.String(length=20), nullable=True),
        sa.Column('address', sa.String(length=80), nullable=False),
        sa.Column('user_agent', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['operator_user.id'], name=op.f('fk_admin_session_user_id_operator_user'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_session')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_admin_session_token_hash')),
    )
    op.create_index(op.f('ix_admin_session_user_id'), 'admin_session', ['user_id'], unique=False)
    op.create_table(
        'signin_throttle',
        sa.Column('key', sa.String(length=100), nullable=False),
        sa.Column('scope', sa.String(length=10), nullable=False),
        sa.Column('account', sa.String(length=254), nullable=False),
        sa.Column('address', sa.String(length=80), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('first_failure_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_failure_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('blocked_until', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("scope IN ('account', 'address')", name=op.f('ck_signin_throttle_scope_known')),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_signin_throttle')),
    )
    with op.batch_alter_table('operator_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('totp_secret', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
    for table in SIMULATED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('simulated', sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table('outbound_message', schema=None) as batch_op:
        batch_op.drop_constraint('status_known', type_='check')
        batch_op.create_check_constraint('status_known', f"status IN ({STATES}, 'simulated')")


def downgrade() -> None:
    op.execute("DELETE FROM outbound_message WHERE status = 'simulated'")
    with op.batch_alter_table('outbound_message', schema=None) as batch_op:
        batch_op.drop_constraint('status_known', type_='check')
        batch_op.create_check_constraint('status_known', f"status IN ({STATES})")
    for table in reversed(SIMULATED):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('simulated')
    with op.batch_alter_table('operator_user', schema=None) as batch_op:
        batch_op.drop_column('totp_last_step')
        batch_op.drop_column('totp_secret')
    op.drop_table('signin_throttle')
    op.drop_index(op.f('ix_admin_session_user_id'), table_name='admin_session')
    op.drop_table('admin_session')
