"""Data flows one way (DESIGN.md): the lower layers never import the upper ones or Flask.

Every module under ``smsgw/services``, ``smsgw/analytics``, ``smsgw/messaging`` and
``smsgw/models`` is read with ``ast``: each import it makes, at the top or inside a
function, absolute or relative, must stay out of ``smsgw.conversations``, ``smsgw.web``
and ``flask``.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import smsgw

PACKAGE = Path(smsgw.__file__).parent
LOWER = ("services", "analytics", "messaging", "models")
FORBIDDEN = ("smsgw.conversations", "smsgw.web", "flask")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, module) for every import in ``source`` of ``module``, relative ones made absolute."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, module)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            # ``from smsgw import web`` imports smsgw.web: name each imported name too.
            found.append((node.lineno, target))
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
    return found


def _imports_of(path: Path) -> list[tuple[int, str]]:
    return _imported(path.read_text(), _module_name(path), path.name == "__init__.py")


def _forbidden(name: str) -> bool:
    return any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)


def _sources() -> list[Path]:
    return sorted(path for layer in LOWER for path in (PACKAGE / layer).rglob("*.py"))


def test_the_walk_reads_every_lower_layer() -> None:
    layers = {path.relative_to(PACKAGE).parts[0] for path in _sources()}
    assert layers == set(LOWER)


@pytest.mark.parametrize("layer", LOWER)
def test_lower_layers_do_not_import_conversations_web_or_flask(layer: str) -> None:
    wrong: dict[str, str] = {}  # one line per import statement
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for line, name in _imports_of(path):
            if _forbidden(name):
                wrong.setdefault(f"{path.relative_to(PACKAGE.parent)}:{line}", name)
    assert not wrong, "\n".join(f"{where} imports {name}" for where, name in wrong.items())


def test_the_walk_sees_function_level_relative_and_from_imports() -> None:
    source = (
        "def later():\n"
        "    from ..web import admin\n"
        "    import flask.json\n"
        "from smsgw import conversations\n"
        "from . import prices\n"
    )
    names = {name for _, name in _imported(source, "smsgw.services.probe")}
    assert {"smsgw.web", "flask.json", "smsgw.conversations", "smsgw.services.prices"} <= names
    assert all(_forbidden(name) for name in ("smsgw.web", "flask.json", "smsgw.conversations"))
    assert not _forbidden("flasky") and not _forbidden("smsgw.webhooks_helper")


def test_cli_modules_depend_on_the_core_not_on_each_other() -> None:
    """One command family per module; what they share is in ``smsgw.cli.core`` (no circle)."""
    wrong = []
    for path in sorted((PACKAGE / "cli").glob("*.py")):
        if path.name == "__init__.py":
            continue
        for line, name in _imports_of(path):
            inside = name.startswith("smsgw.cli.") or name == "smsgw.cli"
            if inside and name not in ("smsgw.cli", "smsgw.cli.core") and not name.startswith("smsgw.cli.core."):
                wrong.append(f"{path.name}:{line} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_the_po_compiler_imports_nothing_of_smsgw() -> None:
    """setup.py loads it by path at build time, before smsgw's dependencies are installed."""
    names = [name for _, name in _imports_of(PACKAGE / "po_compiler.py")]
    assert names and all(name.split(".")[0] in {"__future__", "io", "pathlib", "babel"} for name in names), names
