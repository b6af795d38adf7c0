"""Migrations run on a database that holds data, not only on an empty one.

An operator upgrading the demo (or production) has rows that reference each other; on
SQLite a batch migration rebuilds tables, which must not trip over those references.
"""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from smsgw.migrate import alembic_config, current_revision
from smsgw.models import Buyer, BuyOffer, Contact, DeliveryReport, OutboundMessage
from tests.support.databases import BACKENDS, fresh_database

# The revision before this phase's migrations: sessions, throttles, the collective sale.
BEFORE = "5b1d0c7e9a21"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_seeded_database_goes_down_and_up_again_with_its_rows(tmp_path, backend) -> None:
    with fresh_database(tmp_path, backend) as url:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            outbound = conn.scalar(sa.insert(OutboundMessage).returning(OutboundMessage.id).values(
                idempotency_key="migration:1", to_phone="+254700000001", text="x", purpose="reply"))
            conn.execute(sa.insert(DeliveryReport).values(outbound_id=outbound, gateway_message_id="g1",
                                                          status="Success", phone="+254700000001"))
            counts = {model.__tablename__: conn.scalar(sa.select(sa.func.count()).select_from(model))
                      for model in (Buyer, BuyOffer, Contact, DeliveryReport)}
            # Input suppliers cannot exist before the collective-sale migration: going down drops them.
            suppliers = conn.scalar(sa.select(sa.func.count()).select_from(Buyer).where(Buyer.kind == "supplier"))
            supplier_quotes = conn.scalar(sa.select(sa.func.count()).select_from(BuyOffer).join(Buyer)
                                          .where(Buyer.kind == "supplier"))
        assert counts["buy_offer"] > 0 and counts["buyer"] > suppliers > 0
        engine.dispose()
        config = alembic_config(url)
        command.downgrade(config, BEFORE)
        command.upgrade(config, "head")
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            after = {model.__tablename__: conn.scalar(sa.select(sa.func.count()).select_from(model))
                     for model in (Buyer, BuyOffer, Contact, DeliveryReport)}
            countries = set(conn.scalars(sa.select(Buyer.country)))
        engine.dispose()
        assert after == {**counts, "buyer": counts["buyer"] - suppliers,
                         "buy_offer": counts["buy_offer"] - supplier_quotes}
        # The upgrade gave every buyer the country of its market again.
        assert countries == {"KE", "SN"}
        engine = sa.create_engine(url)
        assert current_revision(engine) is not None
        engine.dispose()
