"""The catalog: commodities, units, markets, grades, buyers and offers; operators edit."""
from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import abort, flash, redirect, render_template, url_for
from werkzeug.wrappers import Response

from smsgw.config import LANGUAGES
from smsgw.models import Buyer, BuyOffer, Commodity, CommodityAlias, Grade, Market, Unit
from smsgw.web.admin import audit, bp
from smsgw.web.admin.auth import requires
from smsgw.web.admin.forms import ActionForm, CommodityForm, MarketForm
from smsgw.web.admin.i18n import tr
from smsgw.web.admin.views.common import db

MARKET_FIELDS = ("name", "short_name", "timezone", "currency", "bulletin_hour")


@bp.get("/catalog")
@requires("viewer")
def catalog() -> str:
    """Everything farmers can ask about, on one page with a section per kind."""
    session = db()
    commodities = session.scalars(
        sa.select(Commodity)
        .options(so.selectinload(Commodity.aliases), so.joinedload(Commodity.default_unit))
        .order_by(Commodity.kind, Commodity.code)
    ).all()
    aliases = {c.id: _aliases_by_lang(c) for c in commodities}
    units = session.scalars(
        sa.select(Unit).options(so.selectinload(Unit.aliases)).order_by(Unit.base, Unit.factor)
    ).all()
    markets = session.scalars(
        sa.select(Market).options(so.selectinload(Market.aliases)).order_by(Market.country, Market.name)
    ).all()
    grades = session.scalars(
        sa.select(Grade)
        .options(so.joinedload(Grade.commodity), so.selectinload(Grade.limits))
        .order_by(Grade.commodity_id, Grade.buyer_id.nulls_first(), Grade.rank)
    ).all()
    buyers = session.scalars(sa.select(Buyer).options(so.joinedload(Buyer.market)).order_by(Buyer.name)).all()
    offers = session.scalars(
        sa.select(BuyOffer)
        .options(
            so.joinedload(BuyOffer.buyer),
            so.joinedload(BuyOffer.commodity),
            so.joinedload(BuyOffer.grade),
            so.joinedload(BuyOffer.unit),
        )
        .order_by(BuyOffer.status.desc(), BuyOffer.window_end.desc())
        .limit(200)
    ).all()
    return render_template(
        "admin/catalog.html", commodities=commodities, aliases=aliases, units=units, markets=markets,
        grades=grades, buyers=buyers, offers=offers, languages=LANGUAGES, action_form=ActionForm(),
    )


def _aliases_by_lang(commodity: Commodity) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for alias in sorted(commodity.aliases, key=lambda a: a.alias):
        found[alias.lang].append(alias.alias)
    return dict(found)


@bp.route("/catalog/markets/<int:market_id>", methods=["GET", "POST"])
@requires("operator")
def market_edit(market_id: int) -> Response | str:
    """Edit a market's names, zone, currency and bulletin hour."""
    session = db()
    market = session.get(Market, market_id) or abort(404)
    form = MarketForm(obj=market)
    if form.validate_on_submit():
        before = audit.snapshot(market, MARKET_FIELDS)
        form.populate_obj(market)
        old, new = audit.changed(before, audit.snapshot(market, MARKET_FIELDS))
        if new:
            audit.record(session, "update", "market", market.id, old, new)
            session.commit()
            flash(tr("Market %(name)s saved.", name=market.name), "info")
        return redirect(url_for("admin.catalog", _anchor="markets"))
    return render_template("admin/market_edit.html", form=form, market=market)


@bp.route("/catalog/commodities/<int:commodity_id>", methods=["GET", "POST"])
@requires("operator")
def commodity_edit(commodity_id: int) -> Response | str:
    """Edit a commodity's names, short names and aliases in each language."""
    session = db()
    commodity = session.get(Commodity, commodity_id) or abort(404)
    current = _aliases_by_lang(commodity)
    form = CommodityForm()
    if not form.is_submitted():
        for lang in LANGUAGES:
            getattr(form, f"name_{lang}").data = commodity.names.get(lang, "")
            getattr(form, f"short_{lang}").data = commodity.short_names.get(lang, "")
            getattr(form, f"aliases_{lang}").data = ", ".join(current.get(lang, []))
    if form.validate_on_submit():
        wanted = form.aliases()
        every = [word for words in wanted.values() for word in words]
        twice = {word for word in every if every.count(word) > 1}
        taken = _aliases_taken(session, commodity, set(every))
        if twice:
            form.form_errors.append(
                tr("A word can be an alias in one language only: %(words)s", words=", ".join(sorted(twice)))
            )
        elif taken:
            form.form_errors.append(tr("Already used by another commodity: %(words)s", words=", ".join(sorted(taken))))
        else:
            before = {"names": commodity.names, "short_names": commodity.short_names, "aliases": current}
            _apply(session, commodity, form.names("name"), form.names("short"), wanted)
            after = {
                "names": commodity.names,
                "short_names": commodity.short_names,
                "aliases": {lang: sorted(words) for lang, words in wanted.items() if words},
            }
            old, new = audit.changed(before, after)
            if new:
                audit.record(session, "update", "commodity", commodity.id, old, new)
                session.commit()
                flash(tr("%(name)s saved.", name=commodity.name("en")), "info")
            return redirect(url_for("admin.catalog", _anchor="commodities"))
    return render_template("admin/commodity_edit.html", form=form, commodity=commodity, languages=LANGUAGES)


def _aliases_taken(session: so.Session, commodity: Commodity, words: set[str]) -> set[str]:
    if not words:
        return set()
    return set(
        session.scalars(
            sa.select(CommodityAlias.alias).where(
                CommodityAlias.alias.in_(words), CommodityAlias.commodity_id != commodity.id
            )
        ).all()
    )


def _apply(
    session: so.Session,
    commodity: Commodity,
    names: dict[str, str],
    shorts: dict[str, str],
    wanted: dict[str, set[str]],
) -> None:
    """Set names and make the alias rows match ``wanted`` (a word keeps its row if kept)."""
    commodity.names = names
    commodity.short_names = shorts
    keep = {(lang, word) for lang, words in wanted.items() for word in words}
    for alias in list(commodity.aliases):
        if (alias.lang, alias.alias) not in keep:
            commodity.aliases.remove(alias)
    session.flush()
    have = {(alias.lang, alias.alias) for alias in commodity.aliases}
    for lang, word in sorted(keep - have):
        commodity.aliases.append(CommodityAlias(lang=lang, alias=word))
    session.flush()


@bp.post("/catalog/offers/<int:offer_id>/toggle")
@requires("operator")
def offer_toggle(offer_id: int) -> Response:
    """Close an open buyer offer, or open a closed one again."""
    session = db()
    offer = session.get(BuyOffer, offer_id) or abort(404)
    before = offer.status
    offer.status = "closed" if offer.status == "open" else "open"
    audit.record(session, "update", "buy_offer", offer.id, {"status": before}, {"status": offer.status})
    session.commit()
    return redirect(url_for("admin.catalog", _anchor="offers"))
