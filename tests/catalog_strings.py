"""English sentences of the gettext catalog, to spot untranslated text on screens."""

from __future__ import annotations

import re
from functools import cache

from babel.messages.extract import extract_from_dir

from smsgw.config import PROJECT_ROOT
from smsgw.i18n import translations

KEYWORDS = {"t": None, "N_": None, "plural": (1, 2)}


@cache
def msgids() -> tuple[str, ...]:
    """Every farmer-facing msgid in the code (what pybabel would extract)."""
    found = []
    method_map = [("smsgw/**.py", "python")]
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(PROJECT_ROOT), method_map, keywords=KEYWORDS
    ):
        found.extend(message if isinstance(message, tuple) else [message])
    return tuple(sorted(set(found)))


def english_fragments(lang: str) -> list[str]:
    """Word runs of English msgids (placeholders removed) that ``lang`` translates differently."""
    catalog = translations(lang)
    fragments = []
    for msgid in msgids():
        if catalog.gettext(msgid) == msgid:
            continue
        for part in re.split(r"%\([a-z_]+\)s|%%|\n", msgid):
            part = part.strip(" .,:?()/")
            if len(part) >= 12 and " " in part:
                fragments.append(part)
    return fragments
