"""enrolment as its own event, imported baseline sales, randomised rollouts

A contact's enrolment gets its source: the day they first got a price, joined a group,
or were enrolled by an operator or a rollout wave. Contacts enrolled before this (at
registration) keep their date with the source ``legacy``. Sale reports may come from an
imported baseline survey (channel ``import``). A rollout draws villages or producer
groups into waves with start dates, with the seed recorded. Contacts get an index by home
market for the bulletin runs.

Revision ID: 8d2a4b6c1e93
Revises: 7c1e2f3a4b50
Create Date: 2026-12-04 21:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '8d2a4b6c1e93'
down_revision = '7c1e2f3a4b50'
branch_labels = None
depends_on = None

SOURCES = "'prices', 'group', 'operator', 'rollout', 'legacy'"
CHANNELS = "'ussd', 'sms', 'admin', 'seed'"


def upgrade() -> None:
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.add_column(sa.Column('enrolment_source', sa.String(length=10), nullable=True))
        batch_op.create_check_constraint('enrolment_source_known', f"enrolment_source IN ({SOURCES})")
    op.execute("UPDATE contact SET enrolment_source = 'legacy' WHERE enrolled_at IS NOT NULL")
    # A market's bulletin run reads its subscribers by home market in id order.
    op.create_index('ix_contact_home_market_id', 'contact', ['home_market_id', 'id'], unique=False)
    with op.batch_alter_table('sale_report', schema=None) as batch_op:
        batch_op.drop_constraint('channel_known', type_='check')
        batch_op.create_check_constraint('channel_known', f"channel IN ({CHANNELS}, 'import')")
    op.create_table(
        'rollout',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=60), nullable=False),
        sa.Column('unit', sa.String(length=8), nullable=False),
        sa.Column('seed', sa.Integer(), nullable=False),
        sa.Column('created_by', sa.String(length=120), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("unit IN ('village', 'group')", name=op.f('ck_rollout_unit_known')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_rollout')),
        sa.UniqueConstraint('name', name=op.f('uq_rollout_name')),
    )
    op.create_table(
        'rollout_wave',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('rollout_id', sa.Integer(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('starts_on', sa.Date(), nullable=False),
        sa.Column('enrolled_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('enrolled', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['rollout_id'], ['rollout.id'], name=op.f('fk_rollout_wave_rollout_id_rollout'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_rollout_wave')),
        sa.UniqueConstraint('rollout_id', 'number', name=op.f('uq_rollout_wave_rollout_id_number')),
    )
    op.create_table(
        'rollout_unit',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('rollout_id', sa.Integer(), nullable=False),
        sa.Column('wave_id', sa.Integer(), nullable=False),
        sa.Column('village', sa.String(length=80), nullable=True),
        sa.Column('group_id', sa.Integer(), nullable=True),
        sa.CheckConstraint('(village IS NULL) <> (group_id IS NULL)', name=op.f('ck_rollout_unit_village_or_group')),
        sa.ForeignKeyConstraint(['group_id'], ['producer_group.id'], name=op.f('fk_rollout_unit_group_id_producer_group')),
        sa.ForeignKeyConstraint(['rollout_id'], ['rollout.id'], name=op.f('fk_rollout_unit_rollout_id_rollout'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['wave_id'], ['rollout_wave.id'], name=op.f('fk_rollout_unit_wave_id_rollout_wave'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_rollout_unit')),
        sa.UniqueConstraint('rollout_id', 'group_id', name=op.f('uq_rollout_unit_rollout_id_group_id')),
        sa.UniqueConstraint('rollout_id', 'village', name=op.f('uq_rollout_unit_rollout_id_village')),
    )


def downgrade() -> None:
    op.drop_table('rollout_unit')
    op.drop_table('rollout_wave')
    op.drop_table('rollout')
    op.execute("DELETE FROM sale_report WHERE channel = 'import'")
    with op.batch_alter_table('sale_report', schema=None) as batch_op:
        batch_op.drop_constraint('channel_known', type_='check')
        batch_op.create_check_constraint('channel_known', f"channel IN ({CHANNELS})")
    op.drop_index('ix_contact_home_market_id', table_name='contact')
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.drop_constraint('enrolment_source_known', type_='check')
        batch_op.drop_column('enrolment_source')
