"""Catalogs: every farmer-facing msgid is translated in every shipped language, safely."""

from __future__ import annotations

import re

import pytest
from babel.messages.pofile import read_po

from smsgw.config import LANGUAGES, PROJECT_ROOT
from smsgw.i18n import Text
from smsgw.messaging.encoding import is_gsm7, normalize
from tests.catalog_strings import msgids

PLACEHOLDER = re.compile(r"%\([a-z_]+\)s|%%")
SHIPPED = [lang for lang in LANGUAGES if lang != "en"]


def _catalog(lang: str):
    with (PROJECT_ROOT / "locales" / lang / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=lang)


@pytest.mark.parametrize("lang", SHIPPED)
def test_every_msgid_is_translated(lang: str) -> None:
    catalog = _catalog(lang)
    missing = [
        msgid for msgid in msgids() if not (catalog.get(msgid) and catalog.get(msgid).string)
    ]
    assert not missing, f"{lang}: {len(missing)} untranslated: {missing[:10]}"


@pytest.mark.parametrize("lang", SHIPPED)
def test_translations_keep_placeholders_and_gsm7(lang: str) -> None:
    catalog = _catalog(lang)
    for message in catalog:
        if not message.id or not message.string:
            continue
        assert sorted(PLACEHOLDER.findall(message.id)) == sorted(
            PLACEHOLDER.findall(message.string)
        ), message.id
        assert is_gsm7(normalize(message.string, lang)), (lang, message.string)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_missing_translation_falls_back_to_english(lang: str) -> None:
    assert Text(lang)("A sentence nobody translated.") == "A sentence nobody translated."
