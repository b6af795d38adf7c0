"""Buyers and their offers on the admin: register a buyer or supplier, post an offer for it.

The rules are the SMS channel's (``services.buyers``, ``services.offers``): a buyer's
markets lie in its country and currency, and an offer priced far from the market waits
for a confirmation before any leader is told.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app, flash, redirect, render_template, url_for
from werkzeug.wrappers import Response
from wtforms import SelectChoice

from smsgw.models import Buyer, Commodity, Grade, Market, Unit
from smsgw.phones import InvalidPhone, normalize_phone
from smsgw.services import buyers, offers
from smsgw.web.admin import audit, bp
from smsgw.web.admin.auth import requires
from smsgw.web.admin.forms import options
from smsgw.web.admin.i18n import current_language, local_today, tr
from smsgw.web.admin.trade_forms import BuyerForm, OfferForm
from smsgw.web.admin.views.common import db


def _markets(session: so.Session) -> list[SelectChoice]:
    markets = session.scalars(sa.select(Market).order_by(Market.country, Market.name))
    return options((str(m.id), f"{m.name} ({m.country})") for m in markets)


@bp.route("/buyers/new", methods=["GET", "POST"])
@requires("operator")
def buyer_new() -> Response | str:
    """Register (or update, by code) a buyer or an input supplier."""
    session = db()
    form = BuyerForm()
    form.markets.choices = _markets(session)
    if form.validate_on_submit():
        try:
            phone = normalize_phone(form.phone.data, current_app.config["SMSGW_DEFAULT_REGION"])
            markets = list(session.scalars(sa.select(Market).where(Market.id.in_(form.markets.data))))
            buyer = buyers.register_buyer(
                session, code=form.code.data, name=form.name.data, kind=form.kind.data, phone=phone,
                country=form.country.data, currency=form.currency.data, markets=markets, language=form.language.data,
            )
        except InvalidPhone:
            form.phone.errors = [tr("Not a valid phone number.")]
        except buyers.BuyerError as error:
            form.form_errors.append(str(error))
        else:
            audit.record(session, "register", "buyer", buyer.id, None,
                         {"code": buyer.code, "kind": buyer.kind, "country": buyer.country,
                          "currency": buyer.currency, "markets": [m.code for m in markets]})
            session.commit()
            flash(tr("Buyer %(code)s saved: its phone can now post offers by SMS.", code=buyer.code), "info")
            return redirect(url_for("admin.catalog", _anchor="buyers"))
    return render_template("admin/buyer_new.html", form=form)


@bp.route("/offers/new", methods=["GET", "POST"])
@requires("operator")
def offer_new() -> Response | str:
    """Post an offer for a buyer; leaders near its delivery market are told, as by SMS."""
    session = db()
    form = OfferForm()
    lang = current_language()
    form.buyer.choices = options((str(b.id), f"{b.name} ({b.kind}, {b.country})")
                                 for b in buyers.list_buyers(session) if b.active)
    form.commodity.choices = options((str(c.id), c.name(lang))
                                     for c in session.scalars(sa.select(Commodity).order_by(Commodity.code)))
    grades = session.scalars(sa.select(Grade).order_by(Grade.commodity_id, Grade.rank))
    form.grade.choices = options([("0", "—"), *((str(g.id), f"{g.commodity.name(lang)} {g.code}") for g in grades)])
    form.unit.choices = options((str(u.id), u.code) for u in session.scalars(sa.select(Unit).order_by(Unit.code)))
    form.market.choices = _markets(session)
    if form.validate_on_submit():
        buyer = session.get_one(Buyer, form.buyer.data)
        today = local_today()
        try:
            offer = offers.post_offer(
                session, buyer=buyer, commodity=session.get_one(Commodity, form.commodity.data),
                quantity=form.quantity.data, unit=session.get_one(Unit, form.unit.data), price=form.price.data,
                window_start=today, window_end=today + dt.timedelta(days=form.days.data),
                grade=session.get(Grade, form.grade.data) if form.grade.data else None,
                market=session.get_one(Market, form.market.data), settings=current_app.config,
                confirmed=bool(form.confirm_price.data),
            )
        except offers.OfferError as error:
            form.form_errors.append(str(error))
        else:
            audit.record(session, "create", "buy_offer", offer.id, None,
                         {"buyer": buyer.code, "price": str(offer.price), "quantity": str(offer.quantity),
                          "status": offer.status})
            session.commit()
            if offer.status == "pending":
                flash(tr("Offer %(id)s waits: its price is far from the market's. Tick the box to post it anyway, "
                         "or the buyer confirms by SMS.", id=offer.id), "error")
            else:
                flash(tr("Offer %(id)s posted; leaders near its market are told.", id=offer.id), "info")
            return redirect(url_for("admin.catalog", _anchor="offers"))
    return render_template("admin/offer_new.html", form=form)
