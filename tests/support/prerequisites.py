"""Missing prerequisites: a skip on a laptop, a failure in CI.

A test that needs something outside the checkout (the data sets in ``../shared/data``,
Debian's Chromium, Linux's ``/proc``) skips when it is missing on a developer's machine.
In CI (``CI=true``, as GitHub Actions and .ci/run's callers set it) the same test fails
instead: a missing prerequisite there is a broken set-up, and a run that quietly skips
a dozen tests looks green while testing less. Every skip in tests/ goes through here.

Use :func:`require` inside a test or fixture, or :func:`prerequisite` as a decorator or
``pytestmark`` (tests/conftest.py checks that mark before the test's fixtures run).

PostgreSQL-only tests carry the ``postgres`` mark (pyproject.toml), and nothing else:
tests/conftest.py calls :func:`require_postgres` for them. They follow another rule,
because .ci/run runs the whole suite twice: first on SQLite (no TEST_DATABASE_URL), then
on a fresh PostgreSQL database (TEST_DATABASE_URL set). In the SQLite pass the
PostgreSQL-only tests skip by design, in CI too: they run in the second pass. A run is
meant for PostgreSQL exactly when TEST_DATABASE_URL is set, and then these tests never
skip: they run, and a TEST_DATABASE_URL that is not a PostgreSQL URL fails them (in CI
and on a laptop alike) rather than letting them pass as skipped.
"""
from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

MARK = "prerequisite"


def in_ci() -> bool:
    """True in CI (``CI=true``), where a missing prerequisite fails the run."""
    return os.environ.get("CI", "").strip().lower() == "true"


def require(condition: object, reason: str) -> None:
    """Go on when ``condition`` holds; else skip (laptop) or fail (CI) saying ``reason``."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"missing prerequisite in CI (CI=true), not skipped: {reason}", pytrace=False)
    pytest.skip(reason)


def prerequisite(condition: object, reason: str) -> pytest.MarkDecorator:
    """A mark for a test, class or module: ``require(condition, reason)`` before it runs."""
    return getattr(pytest.mark, MARK)(bool(condition), reason=reason)


def check_marks(item: pytest.Item) -> None:
    """Apply ``item``'s prerequisite marks and its ``postgres`` mark (from tests/conftest.py)."""
    for mark in item.iter_markers(MARK):
        require(mark.args[0], mark.kwargs["reason"])
    if item.get_closest_marker("postgres") is not None:
        require_postgres()


def postgres_url() -> str | None:
    """TEST_DATABASE_URL when this run is meant for PostgreSQL, else None (the SQLite pass)."""
    return os.environ.get("TEST_DATABASE_URL") or None


def require_postgres() -> None:
    """Skip in the SQLite pass; in a PostgreSQL pass go on, or fail on a non-PostgreSQL URL."""
    url = postgres_url()
    if url is None:
        pytest.skip("PostgreSQL only: runs in the pass with TEST_DATABASE_URL (.ci/run's second pass)")
    try:
        backend = sa.make_url(url).get_backend_name()
    except sa.exc.ArgumentError:
        backend = ""
    if backend != "postgresql":
        pytest.fail(f"TEST_DATABASE_URL is set but is not a PostgreSQL URL ({backend or 'unreadable'})", pytrace=False)

