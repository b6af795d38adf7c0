"""The admin's own catalog: every admin sentence translated into French, apart from the farmers'."""
from __future__ import annotations

import re

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from smsgw.config import PROJECT_ROOT
from smsgw.web.admin.i18n import ADMIN_LANGUAGES, LOCALES_DIR
from tests.catalog_strings import KEYWORDS as FARMER_KEYWORDS

ADMIN_KEYWORDS = {"tr": None, "tr_l": None, "tr_n": (1, 2), "_": None, "gettext": None, "ngettext": (1, 2)}
PLACEHOLDER = re.compile(r"%\([a-z_]+\)s|%%")
ADMIN_DIR = PROJECT_ROOT / "smsgw" / "web" / "admin"


def _admin_msgids() -> set[str | tuple[str, ...]]:
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    return {
        message for _f, _l, message, _c, _x in extract_from_dir(str(ADMIN_DIR), method_map, keywords=ADMIN_KEYWORDS)
    }


def _catalog(lang: str):
    with (LOCALES_DIR / lang / "LC_MESSAGES" / "admin.po").open("rb") as handle:
        return read_po(handle, locale=lang)


def test_every_admin_sentence_is_translated_in_french() -> None:
    catalog = _catalog("fr")
    found = _admin_msgids()
    assert len(found) > 300
    missing = [
        m
        for m in found
        if not (
            catalog.get(m[0] if isinstance(m, tuple) else m) and catalog.get(m[0] if isinstance(m, tuple) else m).string
        )
    ]
    assert not missing, f"{len(missing)} untranslated, e.g. {missing[:5]}"


def test_translations_keep_their_placeholders() -> None:
    for lang in ADMIN_LANGUAGES:
        for message in _catalog(lang):
            if not message.id or not message.string:
                continue
            ids = message.id if isinstance(message.id, tuple) else (message.id,)
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            for text in filter(None, strings):
                assert sorted(PLACEHOLDER.findall(ids[-1])) == sorted(PLACEHOLDER.findall(text)), (lang, message.id)


def test_admin_text_stays_out_of_the_farmer_catalog() -> None:
    # The farmer extraction (t, N_, plural) must find nothing in the admin package.
    found = list(extract_from_dir(str(ADMIN_DIR), [("**.py", "python")], keywords=FARMER_KEYWORDS))
    assert not found, found[:3]
