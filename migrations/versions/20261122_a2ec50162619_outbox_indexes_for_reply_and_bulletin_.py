"""outbox indexes for reply and bulletin caps, price index for imports

The reply caps count a phone's recent replies on every inbound SMS, a bulletin run
counts each subscriber's bulletins of the day, and the global reply cap counts the
last hour's replies: each scanned the whole outbox. A price import checks every
batch against its source's rows of the batch's days: it read every row of the source.

Revision ID: a2ec50162619
Revises: ec2e3ca8b3e3
Create Date: 2026-11-22 12:07:03.703911
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'a2ec50162619'
down_revision = 'ec2e3ca8b3e3'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbound_message', schema=None) as batch_op:
        batch_op.create_index('ix_outbound_message_contact_created', ['contact_id', 'created_at'], unique=False)
        batch_op.create_index('ix_outbound_message_phone_created', ['to_phone', 'created_at'], unique=False)
        batch_op.create_index(
            'ix_outbound_message_reply_created', ['created_at'], unique=False,
            sqlite_where=sa.text("purpose = 'reply'"), postgresql_where=sa.text("purpose = 'reply'"),
        )
    with op.batch_alter_table('price_observation', schema=None) as batch_op:
        batch_op.create_index('ix_price_observation_source_day', ['source', 'observed_on'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('price_observation', schema=None) as batch_op:
        batch_op.drop_index('ix_price_observation_source_day')
    with op.batch_alter_table('outbound_message', schema=None) as batch_op:
        batch_op.drop_index('ix_outbound_message_reply_created')
        batch_op.drop_index('ix_outbound_message_phone_created')
        batch_op.drop_index('ix_outbound_message_contact_created')
