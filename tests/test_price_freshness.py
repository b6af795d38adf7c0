"""Issue 17, item 1: a price past its maximum age is never presented as current.

Real fixtures (the seeded demo) and the real webhooks: an old price (a 2021 WFP row) is
said to be old, with its full date; "best nearby" uses only fresh prices within the
radius and says how far; bulletins leave stale prices out.
"""

from __future__ import annotations

import datetime as dt
import decimal
import itertools

import pytest
import sqlalchemy as sa

from smsgw.db import utcnow
from smsgw.models import Commodity, Contact, Market, OutboundMessage, PriceObservation, Subscription
from smsgw.services import prices
from smsgw.services.bulletin_texts import daily_text

FARMER = "+254700000001"
TODAY = dt.date.today()
OLD_DAY = dt.date(2021, 10, 15)
_ids = itertools.count()


def _get(session, model, code):
    return session.scalar(sa.select(model).where(model.code == code))


def _only_price(session, crop: str, market: str, day: dt.date, amount: str) -> None:
    """Leave ``market``'s ``crop`` with one approved wholesale price, ``amount`` per default unit on ``day``."""
    commodity, place = _get(session, Commodity, crop), _get(session, Market, market)
    session.execute(
        sa.update(PriceObservation)
        .where(PriceObservation.commodity_id == commodity.id, PriceObservation.market_id == place.id)
        .values(status="rejected")
    )
    unit = commodity.default_unit
    session.add(PriceObservation(
        commodity_id=commodity.id, market_id=place.id, observed_on=day, amount=decimal.Decimal(amount),
        unit_id=unit.id, currency=place.currency, price_per_base=decimal.Decimal(amount) / unit.factor,
        kind="wholesale", source="test", status="approved",
    ))
    session.commit()


def _sms(client, session, text: str) -> str:
    client.post("/at/sms", data={"from": FARMER, "to": "22384", "text": text, "id": f"fresh-{next(_ids)}",
                                 "date": utcnow().strftime("%Y-%m-%d %H:%M:%S"), "linkId": ""})
    return session.scalars(
        sa.select(OutboundMessage.text).where(OutboundMessage.to_phone == FARMER, OutboundMessage.purpose == "reply")
        .order_by(OutboundMessage.id.desc())
    ).first()


def _ussd(client, *inputs: str) -> str:
    session_id = f"fresh-{next(_ids)}"
    body = ""
    for depth in range(len(inputs) + 1):
        body = client.post("/at/ussd", data={
            "sessionId": session_id, "phoneNumber": FARMER, "text": "*".join(inputs[:depth])
        }).get_data(as_text=True)
    return body


def test_max_age_is_14_days_by_default_and_set_per_commodity() -> None:
    assert prices.price_max_age("maize") == dt.timedelta(days=14)
    settings = {"PRICE_MAX_AGE_DAYS": 10, "PRICE_MAX_AGE_BY_COMMODITY": "tomatoes:3, onion=5"}
    assert prices.price_max_age("maize", settings) == dt.timedelta(days=10)
    assert prices.price_max_age("TOMATOES", settings) == dt.timedelta(days=3)
    assert prices.price_max_age("onion", settings) == dt.timedelta(days=5)
    assert prices.is_fresh("maize", TODAY - dt.timedelta(days=14), TODAY)
    assert not prices.is_fresh("maize", TODAY - dt.timedelta(days=15), TODAY)
    assert not prices.is_fresh("tomatoes", TODAY - dt.timedelta(days=4), TODAY, settings)


def test_the_settings_carry_the_max_age_and_reject_nonsense(settings) -> None:
    from smsgw.config import ConfigError, load_settings

    assert settings["PRICE_MAX_AGE_DAYS"] == 14 and settings["PRICE_NEARBY_KM"] == 150
    with pytest.raises(ConfigError, match="PRICE_MAX_AGE_BY_COMMODITY"):
        load_settings({"PRICE_MAX_AGE_BY_COMMODITY": "tomatoes seven"})


def test_an_old_price_by_sms_is_said_to_be_old_with_its_year(client, session) -> None:
    _only_price(session, "maize", "nakuru", OLD_DAY, "3100")
    reply = _sms(client, session, "PRICE MAIZE NAKURU")
    assert reply.startswith("No recent price for Maize in Nakuru Wakulima."), reply
    assert "15 Oct 2021" in reply and "KSh 3,100/90kg bag" in reply
    assert "Best" not in reply and "in a week" not in reply


def test_an_old_price_on_ussd_is_said_to_be_old(client, session) -> None:
    _only_price(session, "maize", "nakuru", OLD_DAY, "3100")
    crops = _ussd(client, "1")
    maize = next(line.split(" ")[0].removeprefix("CON") for line in crops.splitlines() if "Maize" in line).strip()
    markets = _ussd(client, "1", maize)
    nakuru = next(line.split(" ")[0].removeprefix("CON").strip() for line in markets.splitlines() if "Nakuru" in line)
    screen = _ussd(client, "1", maize, nakuru)
    assert "No recent price for Maize" in screen and "15 Oct 2021" in screen, screen


def test_an_old_price_in_french_names_the_year(client, session) -> None:
    from smsgw.conversations.texts import price_line
    from smsgw.i18n import Text

    _only_price(session, "maize", "nakuru", OLD_DAY, "3100")
    quote = prices.latest_quote(session, _get(session, Commodity, "maize"), _get(session, Market, "nakuru"), TODAY)
    line = price_line(Text("fr"), quote, None, today=TODAY, fresh=prices.quote_is_fresh(quote, TODAY))
    assert line.startswith("Pas de prix récent pour Mais") and "2021" in line, line


def test_best_nearby_uses_fresh_prices_only_and_says_how_far(client, session) -> None:
    _only_price(session, "maize", "eldoret", TODAY - dt.timedelta(days=40), "9900")  # high but old
    reply = _sms(client, session, "PRICE MAIZE NAKURU")
    assert "Eldoret" not in reply, reply
    _only_price(session, "maize", "eldoret", TODAY, "9900")  # high and fresh, 126 km away
    reply = _sms(client, session, "PRICE MAIZE NAKURU")
    assert "Best: Eldoret" in reply and "(126 km)" in reply, reply


def test_best_nearby_stays_within_the_radius(session) -> None:
    _only_price(session, "maize", "eldoret", TODAY, "9900")
    maize, nakuru = _get(session, Commodity, "maize"), _get(session, Market, "nakuru")
    quote = prices.latest_quote(session, maize, nakuru, TODAY)
    best = prices.best_nearby(session, quote, {"PRICE_NEARBY_KM": 150}, as_of=TODAY)
    assert best is not None and best.market.code == "eldoret" and round(best.distance_km) == 126
    near = prices.best_nearby(session, quote, {"PRICE_NEARBY_KM": 100}, as_of=TODAY)
    assert near is None or near.market.code != "eldoret"


def test_bulletins_leave_stale_prices_out(session) -> None:
    contact = session.scalar(sa.select(Contact).where(Contact.phone == FARMER))
    subs = session.scalars(sa.select(Subscription).where(Subscription.contact_id == contact.id)).all()
    for sub in subs:
        _only_price(session, sub.commodity.code, sub.market.code, TODAY - dt.timedelta(days=20), "3000")
    session.refresh(contact)
    assert daily_text(session, contact, TODAY, {}) is None  # 20 days > 14: nothing to say
    codes = ",".join(f"{sub.commodity.code}:30" for sub in subs)
    text = daily_text(session, contact, TODAY, {"PRICE_MAX_AGE_BY_COMMODITY": codes})
    assert text is not None and "3,000" in text, text
