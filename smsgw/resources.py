"""Where smsgw's data files are: migrations, demo content and translation catalogs.

A built package (a wheel, a non-editable install, a Docker image) carries its own copy
in ``smsgw/_data``, put there by ``setup.py`` at build time with every catalog compiled
to ``.mo``. A checkout or an editable install has no such copy and reads the repository's
top-level ``alembic.ini``, ``migrations/``, ``content/`` and ``locales/`` (``.po`` files,
compiled in memory by ``smsgw.i18n``).
"""
from __future__ import annotations

from pathlib import Path

from smsgw.config import IN_CHECKOUT, PACKAGE_DIR, PROJECT_ROOT, ConfigError

BUNDLED_DIR = PACKAGE_DIR / "_data"
# A checkout always reads its own folders (a stray smsgw/_data there would be stale), and an
# installed package only its own copy, never whatever sits next to it in site-packages.
DATA_DIR = PROJECT_ROOT if IN_CHECKOUT else BUNDLED_DIR


def missing(path: Path) -> ConfigError:
    """The one-line error for a data file an incomplete installation lacks."""
    return ConfigError(f"{path} is missing: this smsgw installation is incomplete (reinstall smsgw)")


def _existing(path: Path) -> Path:
    if not path.exists():
        raise missing(path)
    return path


def alembic_ini() -> Path:
    """The Alembic configuration file."""
    return _existing(DATA_DIR / "alembic.ini")


def migrations_dir() -> Path:
    """The Alembic script folder (env.py and versions/)."""
    return _existing(DATA_DIR / "migrations" / "env.py").parent


def content_dir() -> Path:
    """The demo catalog, people and prices that ``smsgw seed --demo`` loads."""
    return _existing(DATA_DIR / "content")


def locales_dir() -> Path:
    """The farmer catalogs' root; the admin's are in its ``admin/`` folder."""
    return DATA_DIR / "locales"


def catalog(root: Path, lang: str, domain: str) -> tuple[Path, bool]:
    """The catalog file for ``lang`` under ``root`` and whether it is a ``.po`` source.

    A checkout's ``.po`` is preferred to a ``.mo`` beside it: such a ``.mo`` was compiled
    by hand at some point and may be stale. A built package ships ``.mo`` files only.
    """
    base = root / lang / "LC_MESSAGES" / domain
    source = base.with_suffix(".po")
    if source.is_file():
        return source, True
    return _existing(base.with_suffix(".mo")), False
