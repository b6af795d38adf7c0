"""The one ``.po`` to ``.mo`` compiler: Babel's read_po/write_mo, fuzzy entries left out.

Two callers compile the same way, so an installed package says exactly what a checkout
says: ``smsgw.i18n`` (a checkout compiles its catalogs in memory) and ``setup.py`` (a
wheel ships them compiled). setup.py runs before smsgw or its dependencies are installed,
so it loads this file by path: it must import nothing but the standard library and Babel
(a build requirement in pyproject.toml), never ``smsgw``.
"""
from __future__ import annotations

import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po


def compile_po(source: Path, lang: str, domain: str) -> bytes:
    """The ``.mo`` bytes of the catalog ``source`` (``<lang>/LC_MESSAGES/<domain>.po``)."""
    with source.open("rb") as po_file:
        catalog = read_po(po_file, locale=lang, domain=domain)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    return buffer.getvalue()
