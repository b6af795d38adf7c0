"""group messages from leaders

A leader's SMS to the group is stored once (its text, who sent it, how many members it
went to); the members' copies are outbox rows. One per inbound SMS, and counted per
group and day for the daily cap.

Revision ID: 88e10bc11819
Revises: a2ec50162619
Create Date: 2026-12-01 08:37:20.040272
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '88e10bc11819'
down_revision = 'a2ec50162619'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'group_message',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('group_id', sa.Integer(), nullable=False),
        sa.Column('sender_id', sa.Integer(), nullable=False),
        sa.Column('inbound_id', sa.Integer(), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('recipients', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['group_id'], ['producer_group.id'], name=op.f('fk_group_message_group_id_producer_group'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['inbound_id'], ['inbound_message.id'], name=op.f('fk_group_message_inbound_id_inbound_message')),
        sa.ForeignKeyConstraint(['sender_id'], ['contact.id'], name=op.f('fk_group_message_sender_id_contact')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_group_message')),
        sa.UniqueConstraint('inbound_id', name=op.f('uq_group_message_inbound_id')),
    )
    with op.batch_alter_table('group_message', schema=None) as batch_op:
        batch_op.create_index('ix_group_message_group_created', ['group_id', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('group_message', schema=None) as batch_op:
        batch_op.drop_index('ix_group_message_group_created')
    op.drop_table('group_message')
