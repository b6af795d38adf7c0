"""Build hook: ship the migrations, demo content and compiled catalogs inside the package.

Everything else is declared in pyproject.toml. A wheel, and so every non-editable install,
gets ``smsgw/_data/`` with alembic.ini, migrations/, content/ and locales/, every ``.po``
compiled to ``.mo`` with Babel (the sources are left out). It is written into the build
directory only, never into the source tree. An editable install reads the checkout's
folders instead (``smsgw.resources``), so it gets no copy.
"""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DATA = ("alembic.ini", "migrations", "content", "locales")


def data_sources() -> list[Path]:
    """The repository files the bundle is made from, relative to the root."""
    found: list[Path] = []
    for name in DATA:
        top = ROOT / name
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        found += [
            path.relative_to(ROOT)
            for path in files
            if "__pycache__" not in path.parts and path.suffix not in (".pyc", ".mo")
        ]
    return found


def _po_compiler() -> ModuleType:
    """smsgw/po_compiler.py, loaded by path: the package itself cannot be imported at build time."""
    spec = importlib.util.spec_from_file_location("_smsgw_po_compiler", ROOT / "smsgw" / "po_compiler.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compile_catalog(source: Path, target: Path) -> None:
    """Write ``source`` (locales/[admin/]<lang>/LC_MESSAGES/<domain>.po) as a ``.mo``.

    The same compiler as the in-memory compilation of a checkout (``smsgw.po_compiler``),
    so an installed package says exactly what a checkout says.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(_po_compiler().compile_po(source, source.parent.parent.name, source.stem))


class BuildWithData(build_py):
    """``build_py`` that also writes ``smsgw/_data`` into the build directory."""

    def get_source_files(self) -> list[str]:
        # The sdist is made from this list, and a wheel built from the sdist needs them.
        return [*super().get_source_files(), *(str(path) for path in data_sources())]

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "smsgw" / "_data"
        # A reused build directory must not ship a migration or catalog deleted since.
        shutil.rmtree(target, ignore_errors=True)
        for relative in data_sources():
            if relative.parts[0] == "locales":
                # Only compiled catalogs: babel.cfg and the .pot are for translators.
                if relative.suffix == ".po":
                    compile_catalog(ROOT / relative, (target / relative).with_suffix(".mo"))
                continue
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / relative, target / relative)


setup(cmdclass={"build_py": BuildWithData})
