"""GSM-7 or UCS-2, segment counts, and the normaliser that keeps texts in GSM-7."""
from __future__ import annotations

import pytest

from smsgw.messaging.encoding import encode_for_sms, gsm7_length, is_gsm7, measure, normalize


@pytest.mark.parametrize("text", ["Maize 3,200 KES/90kg @Nakuru", "Prix: 12€ [sac]", "é à ù ñ ß"])
def test_gsm7_texts_are_detected(text: str) -> None:
    assert is_gsm7(text)
    assert measure(text).encoding == "gsm7"


@pytest.mark.parametrize("text", ["Maize \u201cgrade 1\u201d", "ሰላም", "ê", "emoji \U0001f33d"])
def test_texts_outside_gsm7_need_ucs2(text: str) -> None:
    assert not is_gsm7(text)
    assert gsm7_length(text) is None
    assert measure(text).encoding == "ucs2"


@pytest.mark.parametrize("char", list("{}[]~\\|^€"))
def test_extension_characters_count_two(char: str) -> None:
    assert gsm7_length(char) == 2
    assert gsm7_length("a" + char) == 3


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (160, 1), (161, 2), (153 * 2, 2), (153 * 2 + 1, 3), (153 * 3, 3)],
)
def test_gsm7_segments(length: int, segments: int) -> None:
    encoded = measure("a" * length)
    assert (encoded.encoding, encoded.units, encoded.segments) == ("gsm7", length, segments)


def test_extension_characters_fill_segments_twice_as_fast() -> None:
    assert measure("{" * 80).segments == 1
    assert measure("{" * 80 + "a").segments == 2


@pytest.mark.parametrize(
    ("length", "segments"),
    [(70, 1), (71, 2), (67 * 2, 2), (67 * 2 + 1, 3)],
)
def test_ucs2_segments(length: int, segments: int) -> None:
    encoded = measure("ሰ" * length)
    assert (encoded.encoding, encoded.units, encoded.segments) == ("ucs2", length, segments)


def test_characters_beyond_the_bmp_take_two_ucs2_units() -> None:
    assert measure("\U0001f33d").units == 2


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("\u2018grade\u2019 \u201cA\u201d", "'grade' \"A\""),
        ("Mon\u2013Fri \u2014 closed", "Mon-Fri - closed"),
        ("3\u00a0200 KES", "3 200 KES"),
        ("3\u202f200 KES", "3 200 KES"),
        ("wait\u2026", "wait..."),
    ],
)
def test_normaliser_replaces_punctuation_and_spaces(raw: str, expected: str) -> None:
    assert normalize(raw) == expected
    assert encode_for_sms(raw).encoding == "gsm7"


def test_one_smart_quote_no_longer_triples_the_cost() -> None:
    text = "Maize \u201cgrade 1\u201d " + "x" * 130
    assert measure(text).segments == 3
    assert encode_for_sms(text).segments == 1


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("fête", "fete"),
        ("hôpital", "hopital"),
        ("maïs", "mais"),
        ("façon", "facon"),
        ("sûr", "sur"),
    ],
)
def test_french_accents_outside_gsm7_become_plain_letters(raw: str, expected: str) -> None:
    encoded = encode_for_sms(raw, "fr")
    assert (encoded.text, encoded.encoding) == (expected, "gsm7")


def test_french_accents_inside_gsm7_are_kept() -> None:
    assert normalize("élevé à côté", "fr") == "élevé à coté"


@pytest.mark.parametrize(
    ("text", "lang"), [("ሰላም ዋጋ", "am"), ("Цена кукурузы", "fr"), ("سعر", "en")]
)
def test_non_latin_scripts_are_left_alone(text: str, lang: str) -> None:
    encoded = encode_for_sms(text, lang)
    assert (encoded.text, encoded.encoding) == (text, "ucs2")


def test_accents_are_kept_for_a_non_latin_language() -> None:
    assert normalize("fête", "am") == "fête"
