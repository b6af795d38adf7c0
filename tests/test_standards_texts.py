"""Issue 17, item 2: one text for a grade on USSD, in the SMS it sends and for STD.

Values exactly as stored (0.25 %, not 0.2), written the locale's way; aflatoxin (a
critical limit) always on the first screen; the price difference in words; a wrong key
on a standards screen gets the invalid-choice line.
"""

from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa

from smsgw.config import LANGUAGES
from smsgw.conversations.ussd.engine import MAX_SCREEN
from smsgw.db import utcnow
from smsgw.i18n import Text
from smsgw.messaging.encoding import encode_for_sms
from smsgw.models import Commodity, OutboundMessage
from smsgw.services import catalog, standard_texts

FARMER = "+254700000001"
_ids = itertools.count()


class Dial:
    """One USSD session through the real webhook."""

    def __init__(self, client) -> None:
        self.client, self.inputs, self.id = client, [], f"std-{next(_ids)}"

    def send(self, *values: str) -> str:
        body = ""
        if not self.inputs and not values:
            values = ()
        if not self.inputs:
            body = self._post()
        for value in values:
            self.inputs.append(value)
            body = self._post()
        return body

    def _post(self) -> str:
        return self.client.post("/at/ussd", data={
            "sessionId": self.id, "phoneNumber": FARMER, "text": "*".join(self.inputs)
        }).get_data(as_text=True)


def number_of(body: str, label: str) -> str:
    for line in body.splitlines():
        number, _, text = line.removeprefix("CON ").partition(" ")
        if label in text:
            return number
    raise AssertionError(f"{label!r} not on screen: {body}")


def _sms(client, session, text: str) -> str:
    client.post("/at/sms", data={"from": FARMER, "to": "22384", "text": text, "id": f"std-{next(_ids)}",
                                 "date": utcnow().strftime("%Y-%m-%d %H:%M:%S"), "linkId": ""})
    return _last_reply(session)


def _last_reply(session) -> str:
    return session.scalars(
        sa.select(OutboundMessage.text).where(OutboundMessage.to_phone == FARMER, OutboundMessage.purpose == "reply")
        .order_by(OutboundMessage.id.desc())
    ).first()


def _maize(session):
    maize = session.scalar(sa.select(Commodity).where(Commodity.code == "maize"))
    grades = catalog.grades_for(session, maize)
    return maize, grades, standard_texts.reference_grade(grades)


def _open_maize_standards(client) -> tuple[Dial, str]:
    dial = Dial(client)
    home = dial.send()
    crops = dial.send(number_of(home, "standards"))
    return dial, dial.send(number_of(crops, "Maize"))


def test_values_are_exact_and_locale_formatted(session) -> None:
    maize, grades, reference = _maize(session)
    english = standard_texts.grade_text(Text("en"), maize, grades[0], reference)
    french = standard_texts.grade_text(Text("fr"), maize, grades[0], reference)
    assert "inorganic matter <=0.25%" in english and "0.2%" not in english.replace("0.25%", "")
    assert "<=13.5%" in english and "<=10 ppb" in english
    assert "0,25%" in french and "13,5%" in french


@pytest.mark.parametrize(("lang", "phrase"), [
    ("en", "pays 6% less than G1"),
    ("fr", "payé 6 % de moins que G1"),
    ("sw", "inalipwa 6% chini ya G1"),
    ("wo", "ñu fey ko 6% lu yées G1"),
])
def test_the_price_difference_is_said_in_words(session, lang, phrase) -> None:
    maize, grades, reference = _maize(session)
    second = standard_texts.grade_text(Text(lang), maize, grades[1], reference)
    assert phrase in second, second
    assert "0%" not in standard_texts.grade_text(Text(lang), maize, grades[0], reference)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_limit_is_shown_and_aflatoxin_is_on_the_first_page(session, lang) -> None:
    t = Text(lang)
    for commodity in session.scalars(sa.select(Commodity)).all():
        grades = catalog.grades_for(session, commodity)
        reference = standard_texts.reference_grade(grades)
        for grade in grades:
            pages = standard_texts.grade_pages(t, commodity, grade, reference, 120)
            assert all(len(page) <= 120 for page in pages), pages
            joined = " ".join(pages)
            for limit in grade.limits:
                assert standard_texts.limit_text(t, limit) in joined
                if limit.parameter in standard_texts.critical_parameters():
                    assert standard_texts.limit_text(t, limit) in pages[0], (grade.code, pages)
            whole = encode_for_sms(standard_texts.grade_text(t, commodity, grade, reference), lang)
            assert whole.encoding == "gsm7" and whole.segments <= 2


def test_critical_limits_come_from_the_content_file() -> None:
    assert {"aflatoxin", "aflatoxin_b1"} <= standard_texts.critical_parameters()


def test_ussd_screen_its_sms_and_std_say_the_same(client, session) -> None:
    maize, grades, reference = _maize(session)
    dial, first = _open_maize_standards(client)
    assert len(first) <= MAX_SCREEN + 4 and "aflatoxin <=10 ppb" in first, first
    screens = [first]
    while "9 More" in screens[-1]:
        screens.append(dial.send("9"))
    shown = " ".join(screen.removeprefix("CON ").split("\n1 ")[0] for screen in screens)
    expected = standard_texts.grade_text(Text("en"), maize, grades[0], reference)
    assert shown == expected, (shown, expected)
    end = dial.send("1")
    assert end.startswith("END ")
    sent_from_ussd = _last_reply(session)
    assert sent_from_ussd == expected
    assert _sms(client, session, "STD MAIZE") == expected


def test_next_grade_then_invalid_keys_get_the_invalid_line(client) -> None:
    dial, first = _open_maize_standards(client)
    while "9 More" in first:
        first = dial.send("9")
    second = dial.send("9")  # "9 Next grade"
    assert "G2" in second and "pays 6% less than G1" in second, second
    wrong = dial.send("7")
    assert "Invalid choice" in wrong, wrong
    crops = Dial(client)
    home = crops.send()
    crops.send(number_of(home, "standards"))
    assert "Invalid choice" in crops.send("88")
