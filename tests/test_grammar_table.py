"""Issue 17, item 3: quantities with units and crops, said right in each language.

Every expected string is written by hand: Babel's plural rule picks the form (French
1.5 is singular, English 1.5 plural), each language's template gives the word order and
agreement (Swahili gunia 1 *la* / magunia 200 *ya*, Wolof bu / yu), French elides "de"
before a vowel (d'arachide) but not before an aspirated h (de haricots).
"""

from __future__ import annotations

import decimal

import pytest
import sqlalchemy as sa

from smsgw.i18n import Text
from smsgw.messaging.encoding import encode_for_sms
from smsgw.models import Commodity, Unit
from smsgw.services.quantities import quantity_phrase

# (quantity, unit code, commodity code or None, expected)
TABLE = {
    "en": [
        ("200", "bag90", "maize", "200 bags of 90 kg of maize"),
        ("1", "bag90", "maize", "1 bag of 90 kg of maize"),
        ("2.5", "bag50", "onion", "2.5 bags of 50 kg of onions"),
        ("100", "bag100", "groundnut", "100 bags of 100 kg of groundnuts"),
        ("1", "crate", "tomatoes", "1 crate of 64 kg of tomatoes"),
        ("12", "crate", "tomatoes", "12 crates of 64 kg of tomatoes"),
        ("1", "kg", "maize-seed", "1 kilogram of maize seed"),
        ("25", "kg", "maize-seed", "25 kilograms of maize seed"),
        ("0.5", "kg", "beans", "0.5 kilograms of beans"),
        ("1", "quintal", "millet", "1 quintal of millet"),
        ("3", "quintal", "rice", "3 quintals of local rice"),
        ("1", "tonne", "maize", "1 tonne of maize"),
        ("1.5", "tonne", "groundnut", "1.5 tonnes of groundnuts"),
        ("1250", "bag90", "beans", "1,250 bags of 90 kg of beans"),
        ("10", "bag50", "fertilizer-dap", "10 bags of 50 kg of DAP fertilizer"),
        ("4", "bag50", "fertilizer-npk", "4 bags of 50 kg of NPK fertilizer"),
        ("7", "bag50", "potatoes", "7 bags of 50 kg of Irish potatoes"),
        ("1", "bag90", None, "1 bag of 90 kg"),
        ("30", "bag50", None, "30 bags of 50 kg"),
        ("2", "crate", None, "2 crates of 64 kg"),
        ("500", "kg", None, "500 kilograms"),
        ("1", "tonne", None, "1 tonne"),
        ("1.000", "tonne", "maize", "1 tonne of maize"),  # as stored: trailing zeros are not decimals
    ],
    "fr": [
        ("200", "bag90", "maize", "200 sacs de 90 kg de mais"),
        ("1", "bag90", "maize", "1 sac de 90 kg de mais"),
        ("1.5", "bag50", "onion", "1,5 sac de 50 kg d'oignons"),
        ("100", "bag100", "groundnut", "100 sacs de 100 kg d'arachide"),
        ("1", "crate", "tomatoes", "1 caisse de 64 kg de tomates"),
        ("12", "crate", "tomatoes", "12 caisses de 64 kg de tomates"),
        ("1", "kg", "maize-seed", "1 kg de semence mais"),
        ("25", "kg", "beans", "25 kg de haricots"),
        ("0.5", "kg", "groundnut", "0,5 kg d'arachide"),
        ("1", "quintal", "millet", "1 quintal de mil"),
        ("3", "quintal", "rice", "3 quintaux de riz local"),
        ("1", "tonne", "maize", "1 tonne de mais"),
        ("2.5", "tonne", "groundnut", "2,5 tonnes d'arachide"),
        ("1250", "bag90", "beans", "1 250 sacs de 90 kg de haricots"),
        ("10", "bag50", "fertilizer-dap", "10 sacs de 50 kg d'engrais DAP"),
        ("4", "bag50", "fertilizer-npk", "4 sacs de 50 kg d'engrais NPK"),
        ("7", "bag50", "potatoes", "7 sacs de 50 kg de pommes de terre"),
        ("20", "bag50", "onion", "20 sacs de 50 kg d'oignons"),
        ("1", "bag90", None, "1 sac de 90 kg"),
        ("30", "bag50", None, "30 sacs de 50 kg"),
        ("500", "kg", None, "500 kg"),
        ("2", "quintal", None, "2 quintaux"),
    ],
    "sw": [
        ("200", "bag90", "maize", "magunia 200 ya kilo 90 ya mahindi"),
        ("1", "bag90", "maize", "gunia 1 la kilo 90 la mahindi"),
        ("2.5", "bag50", "onion", "magunia 2.5 ya kilo 50 ya vitunguu"),
        ("100", "bag100", "groundnut", "magunia 100 ya kilo 100 ya karanga"),
        ("1", "crate", "tomatoes", "kreti 1 ya kilo 64 ya nyanya"),
        ("12", "crate", "tomatoes", "kreti 12 za kilo 64 za nyanya"),
        ("1", "kg", "maize-seed", "kilo 1 ya mbegu mahindi"),
        ("25", "kg", "beans", "kilo 25 za maharagwe"),
        ("0.5", "kg", "groundnut", "kilo 0.5 za karanga"),
        ("1", "quintal", "millet", "kwintali 1 ya uwele"),
        ("3", "quintal", "rice", "kwintali 3 za mchele"),
        ("1", "tonne", "maize", "tani 1 ya mahindi"),
        ("2.5", "tonne", "groundnut", "tani 2.5 za karanga"),
        ("1250", "bag90", "beans", "magunia 1,250 ya kilo 90 ya maharagwe"),
        ("10", "bag50", "fertilizer-dap", "magunia 10 ya kilo 50 ya mbolea DAP"),
        ("7", "bag50", "potatoes", "magunia 7 ya kilo 50 ya viazi"),
        ("20", "bag50", "fertilizer-npk", "magunia 20 ya kilo 50 ya mbolea NPK"),
        ("1", "bag90", None, "gunia 1 la kilo 90"),
        ("30", "bag50", None, "magunia 30 ya kilo 50"),
        ("500", "kg", None, "kilo 500"),
        ("2", "tonne", None, "tani 2"),
        ("1.000", "bag90", None, "gunia 1 la kilo 90"),  # as stored: trailing zeros are not decimals
    ],
    "wo": [
        ("200", "bag90", "maize", "200 saaku mboq yu 90 kg"),
        ("1", "bag90", "maize", "1 saaku mboq bu 90 kg"),
        ("2.5", "bag50", "onion", "2,5 saaku soble yu 50 kg"),
        ("100", "bag100", "groundnut", "100 saaku gerte yu 100 kg"),
        ("1", "crate", "tomatoes", "1 kees tamaate bu 64 kg"),
        ("12", "crate", "tomatoes", "12 kees tamaate yu 64 kg"),
        ("1", "kg", "maize-seed", "1 kilo jiwu mboq"),
        ("25", "kg", "beans", "25 kilo nebbe"),
        ("0.5", "kg", "groundnut", "0,5 kilo gerte"),
        ("1", "quintal", "millet", "1 kintaal dugub"),
        ("3", "quintal", "rice", "3 kintaal ceeb"),
        ("1", "tonne", "maize", "1 tonn mboq"),
        ("2.5", "tonne", "groundnut", "2,5 tonn gerte"),
        ("1250", "bag90", "beans", "1.250 saaku nebbe yu 90 kg"),  # CLDR wo groups with "."
        ("10", "bag50", "fertilizer-dap", "10 saaku engre DAP yu 50 kg"),
        ("7", "bag50", "potatoes", "7 saaku pomu tere yu 50 kg"),
        ("20", "bag50", "fertilizer-npk", "20 saaku engre NPK yu 50 kg"),
        ("1", "bag90", None, "1 saaku bu 90 kg"),
        ("30", "bag50", None, "30 saaku yu 50 kg"),
        ("500", "kg", None, "500 kilo"),
        ("2", "tonne", None, "2 tonn"),
    ],
}
CASES = [(lang, *row) for lang, rows in TABLE.items() for row in rows]


def test_the_table_has_twenty_cases_per_language() -> None:
    assert all(len(rows) >= 20 for rows in TABLE.values()) and set(TABLE) == {"en", "fr", "sw", "wo"}


@pytest.mark.parametrize(("lang", "qty", "unit", "crop", "expected"), CASES)
def test_quantity_phrase(session, lang, qty, unit, crop, expected) -> None:
    unit_row = session.scalar(sa.select(Unit).where(Unit.code == unit))
    commodity = session.scalar(sa.select(Commodity).where(Commodity.code == crop)) if crop else None
    said = quantity_phrase(Text(lang), decimal.Decimal(qty), unit_row, commodity)
    assert said == expected
    assert encode_for_sms(said, lang).encoding == "gsm7"
