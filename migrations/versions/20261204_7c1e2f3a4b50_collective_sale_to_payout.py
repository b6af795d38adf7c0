"""collective sale to payout: buyers' countries, markets and currencies, offers with a
delivery market and a reserved quantity, draft orders awaiting a price confirmation, and
each member's delivery, payout, payment reference and confirmation

Buyers (and input suppliers) get a country, a currency, the contact that speaks for them
and the markets they serve. An offer has a kind (a buyer's offer for produce, or a
supplier's quote for inputs), a delivery market, how much of it orders have reserved, and
may wait for its buyer's confirmation (``pending``) or be ``withdrawn``. An order may be a
``draft`` until its leader confirms a price far from the reference. Settlement records the
final price, the date the buyer paid and the group's fee per unit; each commitment keeps
the grade and quantity delivered, the payout, the payment reference and the member's
confirmation or dispute.

Revision ID: 7c1e2f3a4b50
Revises: 6a9f1c3e5d27
Create Date: 2026-12-04 18:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '7c1e2f3a4b50'
down_revision = '6a9f1c3e5d27'
branch_labels = None
depends_on = None

BUYER_KINDS = "'trader', 'processor', 'exporter', 'wholesaler', 'cooperative'"
ORDER_STATES = "'open', 'closed', 'fulfilled', 'cancelled'"


def upgrade() -> None:
    with op.batch_alter_table('buyer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('country', sa.String(length=2), nullable=True))
        batch_op.add_column(sa.Column('currency', sa.String(length=3), nullable=True))
        batch_op.add_column(sa.Column('contact_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.create_foreign_key(batch_op.f('fk_buyer_contact_id_contact'), 'contact', ['contact_id'], ['id'])
        batch_op.drop_constraint('kind_known', type_='check')
        batch_op.create_check_constraint('kind_known', f"kind IN ({BUYER_KINDS}, 'supplier')")
    # A buyer's country and currency: those of its market, where it has one.
    op.execute("UPDATE buyer SET country = (SELECT market.country FROM market WHERE market.id = buyer.market_id)")
    op.execute("UPDATE buyer SET currency = CASE country WHEN 'KE' THEN 'KES' WHEN 'SN' THEN 'XOF' END")
    op.create_table(
        'buyer_market',
        sa.Column('buyer_id', sa.Integer(), nullable=False),
        sa.Column('market_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['buyer_id'], ['buyer.id'], name=op.f('fk_buyer_market_buyer_id_buyer'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['market_id'], ['market.id'], name=op.f('fk_buyer_market_market_id_market')),
        sa.PrimaryKeyConstraint('buyer_id', 'market_id', name=op.f('pk_buyer_market')),
    )
    op.execute("INSERT INTO buyer_market (buyer_id, market_id) SELECT id, market_id FROM buyer WHERE market_id IS NOT NULL")
    with op.batch_alter_table('buy_offer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=6), server_default='buy', nullable=False))
        batch_op.add_column(sa.Column('market_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('reserved_quantity', sa.Numeric(precision=14, scale=3), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column('status', existing_type=sa.String(length=8), type_=sa.String(length=10),
                              existing_nullable=False)
        batch_op.create_foreign_key(batch_op.f('fk_buy_offer_market_id_market'), 'market', ['market_id'], ['id'])
        batch_op.drop_constraint('status_known', type_='check')
        batch_op.create_check_constraint('status_known', "status IN ('pending', 'open', 'closed', 'withdrawn')")
        batch_op.create_check_constraint('kind_known', "kind IN ('buy', 'supply')")
        batch_op.create_check_constraint('reserved_within_quantity', "reserved_quantity >= 0 AND reserved_quantity <= quantity")
    with op.batch_alter_table('group_order', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paid_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('fee_per_unit', sa.Numeric(precision=14, scale=2), nullable=True))
        batch_op.add_column(sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_constraint('status_known', type_='check')
        batch_op.create_check_constraint('status_known', f"status IN ({ORDER_STATES}, 'draft')")
    with op.batch_alter_table('commitment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delivered_grade_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('payout', sa.Numeric(precision=14, scale=2), nullable=True))
        batch_op.add_column(sa.Column('payment_reference', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('confirmation', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('dispute_note', sa.Text(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_commitment_delivered_grade_id_grade'), 'grade', ['delivered_grade_id'], ['id'])
        batch_op.create_check_constraint('confirmation_known', "confirmation IS NULL OR confirmation IN ('confirmed', 'disputed')")


def downgrade() -> None:
    with op.batch_alter_table('commitment', schema=None) as batch_op:
        batch_op.drop_constraint('confirmation_known', type_='check')
        batch_op.drop_constraint(batch_op.f('fk_commitment_delivered_grade_id_grade'), type_='foreignkey')
        for column in ('dispute_note', 'confirmed_at', 'confirmation', 'paid_at', 'payment_reference', 'payout',
                       'delivered_at', 'delivered_grade_id'):
            batch_op.drop_column(column)
    op.execute("UPDATE group_order SET status = 'cancelled' WHERE status = 'draft'")
    with op.batch_alter_table('group_order', schema=None) as batch_op:
        batch_op.drop_constraint('status_known', type_='check')
        batch_op.create_check_constraint('status_known', f"status IN ({ORDER_STATES})")
        for column in ('settled_at', 'fee_per_unit', 'paid_on'):
            batch_op.drop_column(column)
    op.execute("UPDATE buy_offer SET status = 'closed' WHERE status IN ('pending', 'withdrawn')")
    with op.batch_alter_table('buy_offer', schema=None) as batch_op:
        batch_op.drop_constraint('reserved_within_quantity', type_='check')
        batch_op.drop_constraint('kind_known', type_='check')
        batch_op.drop_constraint('status_known', type_='check')
        batch_op.create_check_constraint('status_known', "status IN ('open', 'closed')")
        batch_op.alter_column('status', existing_type=sa.String(length=10), type_=sa.String(length=8),
                              existing_nullable=False)
        batch_op.drop_constraint(batch_op.f('fk_buy_offer_market_id_market'), type_='foreignkey')
        for column in ('withdrawn_at', 'reserved_quantity', 'market_id', 'kind'):
            batch_op.drop_column(column)
    op.drop_table('buyer_market')
    suppliers = "SELECT id FROM buyer WHERE kind = 'supplier'"
    op.execute(f"UPDATE group_order SET offer_id = NULL WHERE offer_id IN (SELECT id FROM buy_offer WHERE buyer_id IN ({suppliers}))")
    op.execute(f"UPDATE group_order SET buyer_id = NULL WHERE buyer_id IN ({suppliers})")
    op.execute(f"DELETE FROM buy_offer WHERE buyer_id IN ({suppliers})")
    op.execute("DELETE FROM buyer WHERE kind = 'supplier'")
    with op.batch_alter_table('buyer', schema=None) as batch_op:
        batch_op.drop_constraint('kind_known', type_='check')
        batch_op.create_check_constraint('kind_known', f"kind IN ({BUYER_KINDS})")
        batch_op.drop_constraint(batch_op.f('fk_buyer_contact_id_contact'), type_='foreignkey')
        for column in ('active', 'contact_id', 'currency', 'country'):
            batch_op.drop_column(column)
