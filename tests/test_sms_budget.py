"""Every message fits one SMS / one USSD screen in every language, with realistic values.

Each msgid is rendered with long but real values for its placeholders (the longest
crop and market names of the demo catalog, five-digit prices) in every language, then
normalised as the outbox does; it must stay GSM-7 and within 160 characters.
"""

from __future__ import annotations

import re

import pytest

from smsgw.config import LANGUAGES
from smsgw.i18n import Text
from smsgw.messaging.encoding import measure, normalize
from tests.catalog_strings import msgids

VALUES = {
    "crop": "Pommes de terre",
    "market": "Nairobi Wakulima",
    "date": "22 Nov",
    "price": "KSh 12,500",
    "unit": "gunia 90kg",
    "change": "+12%",
    "grade": "G1",
    "standard": "EAS 2:2017",
    "diff": "-20%",
    "text": "Grade 1: moisture max 13.5%, foreign matter 0.5%, broken 2%, aflatoxin 10 ppb.",
    "id": "1234",
    "qty": "1,250",
    "total": "12,500",
    "target": "20,000",
    "pct": "63",
    "alert": "Mahindi Nakuru",
    "verb": "Sell",
    "days": "14",
    "max": "60",
    "currency": "FCFA",
    "example": "OPEN SELL 200 MAIZE 4300 14",
    "name": "Wanjiru Kamau",
    "group": "Ngata Farmers Group",
    "n": "12",
    "count": "12",
    "deadline": "30 Nov",
    "buyer": "Nakuru Millers Ltd",
    "place": "Nakuru depot",
    "reason": "out of range",
    "time": "06:00",
    "cap": "3",
    "km": "147",
    "terms": "pays 20% less than G1",
    "word": "MAHINDI",
    "where": "NAKURU",
    "bag": "GUNIA90",
    "amount": "12500",
    "lang": "SW",
    "size": "100",
    "offer": "1234",
    "left": "1,250",
    "ussd": "*384#",
    # store or sell: the longest month names (French "sept.", "janv."), two-digit years
    "start": "sept.",
    "end": "janv.",
    "paid": "10",
    "years": "12",
    "need": "5",
    "gain": "+18%",
    "worst": "-23%",
    # settlement: the group fee per unit and a mobile-money payment code
    "fee": "KSh 1,250",
    "ref": "QK12AB34CD56",
}
# Messages that carry free text of the catalog are measured where they are composed.
COMPOSED_ELSEWHERE = {"%(crop)s %(grade)s (%(standard)s): %(text)s Price %(diff)s."}
PLACEHOLDER = re.compile(r"%\(([a-z_]+)\)s")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_message_fits_one_sms(lang: str) -> None:
    t = Text(lang)
    too_long = []
    for msgid in msgids():
        if msgid in COMPOSED_ELSEWHERE:
            continue
        names = set(PLACEHOLDER.findall(msgid))
        unknown = names - set(VALUES)
        assert not unknown, f"add sample values for {unknown} ({msgid!r})"
        text = normalize(
            t(msgid, **{name: VALUES[name] for name in names}) if names else t(msgid), lang
        )
        encoded = measure(text)
        if encoded.encoding != "gsm7" or encoded.units > 160:
            too_long.append((encoded.units, text))
    assert not too_long, too_long
