"""The SMS keyword table is complete: every command word has its handler in ``router``."""
from __future__ import annotations

import ast
from pathlib import Path

from smsgw.conversations.sms import keywords, parser, router


def test_every_command_word_has_a_handler() -> None:
    commands = set(keywords.COMMAND_WORDS)
    missing = sorted(commands - set(router.HANDLERS))
    assert not missing, f"command words without a handler in router.HANDLERS: {missing}"


def test_every_command_the_parser_makes_has_a_handler() -> None:
    # Parsed("price", ...) and the like, besides the command words' own commands.
    tree = ast.parse(Path(parser.__file__).read_text())
    made = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", None) == "Parsed"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    assert made
    assert not made - set(router.HANDLERS)


def test_the_table_is_read_only_and_names_only_real_commands() -> None:
    assert not hasattr(router.HANDLERS, "update")  # no module may add keywords on import
    extra = set(router.HANDLERS) - set(keywords.COMMAND_WORDS) - {"unknown", "empty"}
    assert not extra, f"handlers for no command word: {sorted(extra)}"
