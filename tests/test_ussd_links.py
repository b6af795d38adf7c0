"""Every USSD screen a screen names exists: read from the source, so no caller finds a typo.

Screens name each other by strings (``Go("sale_qty")``, ``next_screen = "prices_result"``,
``MenuItem(..., "orders")``). This walks the source of the USSD package with ``ast``:
each string that names a screen must be registered, each link made from a variable must
be one of the few forms known here (whose strings are collected too), and each registered
screen must be reachable from a link or be a root.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from smsgw.conversations.ussd import engine, screens
from smsgw.conversations.ussd.screens import common

USSD = Path(engine.__file__).parent
SOURCES = sorted(USSD.rglob("*.py"))
MOVES = {"Go", "Frame"}  # engine.Go(screen, ...) and engine.Frame(screen, ...)
# Lists of screen names (or of (label, screen) pairs) that a menu chooses from.
LINK_LISTS = {"targets", "options"}
SCREEN_ATTRIBUTES = {"name", "next_screen"}
# A link whose target is not a literal, as ast.unparse writes it: where its strings come from.
DYNAMIC = {
    "self.name": "the screen's own name attribute (collected below)",
    "self.next_screen": "a next_screen attribute (collected below)",
    "item.screen": "a MenuItem of MAIN_MENU (collected below)",
    "targets[int(value) - 1]": "a list named targets (collected below)",
    "options[int(value) - 1][1]": "a list named options of (label, screen) pairs (collected below)",
    "params['then']": "a MenuItem's screen, carried through registration",
    "move.screen": "the engine applying a Go",
    "data[0]": "a frame stored by to_json",
    "cls": "Frame.from_json",
}


def _strings(node: ast.AST) -> list[str]:
    """The string constants a link expression can evaluate to (a literal or a conditional)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _strings(node.body) + _strings(node.orelse)
    return []


def _listed(node: ast.AST) -> list[str]:
    """The screen names in one item of a link list: a string, or the strings of a pair."""
    if isinstance(node, ast.Tuple):
        return [target for element in node.elts for target in _strings(element)]
    return _strings(node)


def _links() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """((where, target) for every literal target, (where, expression) for every other one)."""
    literal: list[tuple[str, str]] = []
    dynamic: list[tuple[str, str]] = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(USSD)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Call):
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                first = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "screen"), None)
                if name in MOVES and first is not None:
                    found = _strings(first)
                    if found:
                        literal += [(where, target) for target in found]
                    else:
                        dynamic.append((where, ast.unparse(first)))
                if name == "MenuItem" and len(node.args) >= 2:
                    literal += [(where, target) for target in _strings(node.args[1])]
                # targets.append("leader_close"), options.append((label, "alerts_list"))
                if (
                    name == "append"
                    and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id in LINK_LISTS
                ):
                    literal += [(where, target) for arg in node.args for target in _listed(arg)]
            if isinstance(node, ast.Assign):
                names = {t.id for t in node.targets if isinstance(t, ast.Name)}
                if names & SCREEN_ATTRIBUTES:
                    literal += [(where, target) for target in _strings(node.value) if target]
                if names & LINK_LISTS and isinstance(node.value, ast.List):
                    literal += [(where, target) for item in node.value.elts for target in _listed(item)]
    return literal, dynamic


def test_the_source_has_links_to_read() -> None:
    literal, dynamic = _links()
    assert len(engine.SCREENS) >= 30
    assert len(literal) >= len(engine.SCREENS)
    assert dynamic


def test_every_screen_named_in_the_source_is_registered() -> None:
    literal, _ = _links()
    unknown = [f"{where}: {target!r}" for where, target in literal if target not in engine.SCREENS]
    assert not unknown, "links to screens that do not exist:\n" + "\n".join(unknown)


def test_every_link_made_from_a_variable_is_a_known_form() -> None:
    _, dynamic = _links()
    unknown = [f"{where}: {expression}" for where, expression in dynamic if expression not in DYNAMIC]
    assert not unknown, (
        "a screen link this test cannot check; add its form to DYNAMIC with where its strings come from:\n"
        + "\n".join(unknown)
    )


def test_every_registered_screen_is_reachable() -> None:
    literal, _ = _links()
    targets = {target for _, target in literal}
    roots = {"main", "lang", "resume"}
    unreachable = sorted(set(engine.SCREENS) - targets - roots)
    assert not unreachable, f"screens nothing links to: {unreachable}"


def test_every_screen_is_registered_under_its_own_name() -> None:
    for key, registered in engine.SCREENS.items():
        assert getattr(registered, "name", "") in ("", key), key
    assert all(item.screen in engine.SCREENS for item in common.MAIN_MENU)


def test_a_broken_link_is_refused_at_import() -> None:
    assert list(screens.declared_links())
    engine.check_links(screens.declared_links())  # the real screens pass
    with pytest.raises(LookupError, match="main -> 'prices_typo'"):
        engine.check_links([*screens.declared_links(), ("main", "prices_typo")])
