"""Forms of the buyers' side of the collective sale: a buyer (or supplier) and an offer."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DecimalField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from smsgw.services.buyers import BUYER_KINDS
from smsgw.web.admin.forms import LANGUAGE_NAMES, options
from smsgw.web.admin.i18n import tr_l


class BuyerForm(FlaskForm):
    """A buyer of produce or a supplier of inputs, and the phone that speaks for it."""

    code = StringField(tr_l("Code"), validators=[
        DataRequired(), Regexp(r"^[a-z0-9][a-z0-9-]{0,39}$", message=tr_l("Lowercase letters, digits and dashes."))])
    name = StringField(tr_l("Name"), validators=[DataRequired(), Length(max=80)])
    kind = SelectField(tr_l("Kind"), choices=options((kind, kind) for kind in BUYER_KINDS))
    phone = StringField(tr_l("Phone"), validators=[DataRequired(), Length(max=20)])
    country = StringField(tr_l("Country (two letters)"), validators=[DataRequired(), Regexp(r"^[A-Za-z]{2}$")])
    currency = StringField(tr_l("Currency (three letters)"), validators=[DataRequired(), Regexp(r"^[A-Za-z]{3}$")])
    markets = SelectMultipleField(tr_l("Markets served"), coerce=int, validators=[DataRequired()])
    language = SelectField(tr_l("Language of its SMS"), choices=options(LANGUAGE_NAMES))
    submit = SubmitField(tr_l("Save"))


class OfferForm(FlaskForm):
    """An offer posted for a buyer (a quote for a supplier), as its SMS would."""

    buyer = SelectField(tr_l("Buyer"), coerce=int)
    commodity = SelectField(tr_l("Commodity"), coerce=int)
    grade = SelectField(tr_l("Grade"), coerce=int, validators=[Optional()])
    price = DecimalField(tr_l("Price per unit"), places=2, validators=[DataRequired(), NumberRange(min=0.01)])
    quantity = DecimalField(tr_l("Quantity"), places=3, validators=[DataRequired(), NumberRange(min=0.001)])
    unit = SelectField(tr_l("Unit"), coerce=int)
    market = SelectField(tr_l("Delivery market"), coerce=int)
    days = IntegerField(tr_l("Days valid"), default=14, validators=[DataRequired(), NumberRange(min=1, max=180)])
    confirm_price = BooleanField(tr_l("The price is right even if far from the market's"))
    submit = SubmitField(tr_l("Post the offer"))
