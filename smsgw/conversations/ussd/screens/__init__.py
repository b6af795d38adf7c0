"""USSD screens, one module per menu; importing this package registers them all.

It then checks the links it can see without running a screen: each registered screen's
``name`` (what a paged list goes to for its next page) is its own, each ``next_screen``
exists, and each main-menu entry exists. ``tests/test_ussd_links.py`` also reads every
``Go(...)`` and ``Frame(...)`` in the source.
"""

from collections.abc import Iterator

from smsgw.conversations.ussd.engine import SCREENS, check_links
from smsgw.conversations.ussd.screens import alerts, common, leader, orders, payouts, prices, sales  # noqa: F401


def declared_links() -> Iterator[tuple[str, str]]:
    """(from, to) for every link a screen declares in an attribute or the main menu."""
    for key, registered in SCREENS.items():
        for attribute in ("name", "next_screen"):
            target = getattr(registered, attribute, "")
            if target:
                yield key, target
        own = getattr(registered, "name", "")
        if own not in ("", key):
            yield key, f"{own} (its name, but it is registered as {key})"
    for item in common.MAIN_MENU:
        yield "main", item.screen


check_links(declared_links())
