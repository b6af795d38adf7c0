"""Buyers and offers on the admin and the command line (issue 18, step 1)."""
from __future__ import annotations

import sqlalchemy as sa
from click.testing import CliRunner

from smsgw.cli import main
from smsgw.models import AuditEntry, Buyer, BuyOffer, Commodity, Market, OutboundMessage, Unit
from tests.support.databases import fresh_database
from tests.test_admin_fixtures import post

pytest_plugins = ["tests.test_admin_fixtures"]


def _ids(connection, model, **where):
    return connection.scalar(sa.select(model.id).filter_by(**where))


def test_an_operator_registers_a_buyer_and_its_markets_must_be_in_its_country(operator, connection) -> None:
    nakuru, kaolack = _ids(connection, Market, code="nakuru"), _ids(connection, Market, code="kaolack")
    form = {"code": "eldoret-millers", "name": "Eldoret Millers", "kind": "processor", "phone": "0711000222",
            "country": "KE", "currency": "KES", "markets": [str(nakuru), str(kaolack)], "language": "sw"}
    refused = post(operator, "/admin/buyers/new", form, page="/admin/buyers/new")
    assert refused.status_code == 200 and "kaolack is not in KE" in refused.get_data(as_text=True)
    assert _ids(connection, Buyer, code="eldoret-millers") is None
    saved = post(operator, "/admin/buyers/new", {**form, "markets": [str(nakuru)]}, page="/admin/buyers/new")
    assert saved.status_code == 302
    buyer = connection.execute(sa.select(Buyer).where(Buyer.code == "eldoret-millers")).one()
    assert (buyer.country, buyer.currency, buyer.phone) == ("KE", "KES", "+254711000222")
    assert connection.scalar(
        sa.select(AuditEntry.after).where(AuditEntry.entity == "buyer").order_by(AuditEntry.id.desc())
    )["markets"] == ["nakuru"]


def test_an_offer_posted_on_the_admin_reaches_the_leaders_or_waits_when_far_from_the_market(
    operator, connection
) -> None:
    buyer = connection.execute(sa.select(Buyer).where(Buyer.country == "KE", Buyer.kind != "supplier")).first()
    maize, bag = _ids(connection, Commodity, code="maize"), _ids(connection, Unit, code="bag90")
    nakuru = _ids(connection, Market, code="nakuru")
    form = {"buyer": str(buyer.id), "commodity": str(maize), "grade": "0", "price": "4400", "quantity": "300",
            "unit": str(bag), "market": str(nakuru), "days": "14"}
    assert post(operator, "/admin/offers/new", form, page="/admin/offers/new").status_code == 302
    offer = connection.execute(sa.select(BuyOffer).order_by(BuyOffer.id.desc())).first()
    assert (offer.status, offer.buyer_id, offer.market_id) == ("open", buyer.id, nakuru)
    told = connection.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)
                             .where(OutboundMessage.idempotency_key.like(f"offer:{offer.id}:group:%")))
    assert told >= 1
    far = post(operator, "/admin/offers/new", {**form, "price": "44000"}, page="/admin/offers/new")
    assert far.status_code == 302
    pending = connection.execute(sa.select(BuyOffer).order_by(BuyOffer.id.desc())).first()
    assert pending.status == "pending"
    assert not connection.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)
                                 .where(OutboundMessage.idempotency_key.like(f"offer:{pending.id}:group:%")))
    confirmed = post(
        operator, "/admin/offers/new", {**form, "price": "44000", "confirm_price": "y"}, page="/admin/offers/new"
    )
    assert confirmed.status_code == 302
    assert connection.execute(sa.select(BuyOffer.status).order_by(BuyOffer.id.desc())).scalar() == "open"


def test_the_cli_registers_and_lists_buyers(tmp_path, monkeypatch) -> None:
    with fresh_database(tmp_path, "sqlite") as url:
        monkeypatch.setenv("DATABASE_URL", url)
        runner = CliRunner()
        added = runner.invoke(main, ["buyers", "add", "--name", "Eldoret Millers", "--kind", "processor", "--phone",
                                     "0711000222", "--country", "KE", "--currency", "KES", "--market", "nakuru",
                                     "eldoret-millers"])
        assert added.exit_code == 0, added.output
        assert "buyer eldoret-millers (processor, KE, KES) registered" in added.output
        wrong = runner.invoke(main, ["buyers", "add", "--name", "X", "--phone", "0711000223", "--country", "SN",
                                     "--currency", "XOF", "--market", "nakuru", "x"])
        assert wrong.exit_code == 1 and "market nakuru is not in SN" in wrong.output
        unknown = runner.invoke(main, ["buyers", "add", "--name", "X", "--phone", "0711000223", "--country", "KE",
                                       "--currency", "KES", "--market", "atlantis", "x"])
        assert unknown.exit_code == 1 and "unknown market(s): atlantis" in unknown.output
        listing = runner.invoke(main, ["buyers", "list"])
        assert "eldoret-millers" in listing.output and "nakuru" in listing.output and "x " not in listing.output


def test_admin_amounts_are_read_like_sms_numbers() -> None:
    from decimal import Decimal

    from smsgw.web.admin.views.orders import _decimal

    # A decimal comma is a decimal, not thousands: "1,5" bags is never saved as 15.
    assert _decimal("1,5") == Decimal("1.5") and _decimal("4,300") == Decimal(4300)
    assert _decimal("4 300") is None or _decimal("4 300") == Decimal(4300)
    assert _decimal("abc") is None and _decimal("") is None and _decimal("NaN") is None
