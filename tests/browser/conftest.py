"""Browser tests: the app served on 127.0.0.1 against a real SQLite file, driven by Chromium.

The browser's requests commit for real, so these tests use their own migrated and seeded
database file, not the rolled-back transaction of the other tests (also on PostgreSQL
runs). Debian's Chromium is launched by path: nothing is downloaded.
"""
from __future__ import annotations

import datetime as dt
import decimal
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from werkzeug.security import generate_password_hash

from smsgw import create_app
from smsgw.config import PROJECT_ROOT
from smsgw.db import Database, utcnow
from smsgw.migrate import upgrade
from smsgw.models import Commodity, Market, OperatorUser, OutboundMessage, PriceObservation
from smsgw.services.seeding import seed_demo
from tests.support.prerequisites import prerequisite
from tests.support.server import AppServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SHOTS = PROJECT_ROOT / "test-artifacts" / "screenshots"
ADMIN = ("admin@example.org", "a long admin password")
VIEWER = ("viewer@example.org", "a long viewer password")
HELD_PRICE = decimal.Decimal(5123)
FAILURE = "AbsentSubscriber"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Without Chromium, skip here on a laptop; in CI (CI=true) fail (tests/support/prerequisites.py)."""
    needs = prerequisite(
        CHROMIUM.exists(), "Debian's chromium is not installed (apt-get install chromium); CI installs it"
    )
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(needs)


@dataclass(frozen=True)
class Site:
    """The served app and the rows the tests look for."""

    url: str
    database_url: str
    held_price_id: int
    failed_message_id: int


def _prepare(url: str) -> tuple[int, int]:
    """Migrate, seed the demo, add two accounts, one held price and one failed message."""
    upgrade(url)
    db = Database(url)
    with db.session() as session:
        seed_demo(session, PROJECT_ROOT / "content", dt.date.today())
        session.add(OperatorUser(email=ADMIN[0], role="admin", password_hash=generate_password_hash(ADMIN[1])))
        session.add(OperatorUser(email=VIEWER[0], role="viewer", password_hash=generate_password_hash(VIEWER[1])))
        market = session.scalar(sa.select(Market).where(Market.code == "nakuru"))
        maize = session.scalar(sa.select(Commodity).where(Commodity.code == "maize"))
        unit = maize.default_unit
        held = PriceObservation(
            commodity_id=maize.id, market_id=market.id, observed_on=dt.date.today(), amount=HELD_PRICE, unit_id=unit.id,
            currency=market.currency, price_per_base=(HELD_PRICE / unit.factor).quantize(decimal.Decimal("0.000001")),
            kind="wholesale", source="sms", source_ref="browser-test", status="pending",
            status_reason="+27% vs 90-day median in Nakuru Wakulima (robust z 4.2)",
        )
        failed = OutboundMessage(
            idempotency_key="browser-test:failed",
            to_phone="+254700000003",
            text="Prices: Maize Nakuru KSh 4,100/90kg bag",
            purpose="bulletin",
            priority=5,
            status="failed",
            attempts=1,
            last_error=FAILURE,
            final_at=utcnow(),
        )
        session.add_all([held, failed])
        session.flush()
        ids = held.id, failed.id
    db.dispose()
    return ids


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The app on a free port of 127.0.0.1, in a background thread."""
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'browser.db'}"
    held_id, failed_id = _prepare(url)
    app = create_app({"DATABASE_URL": url, "WEBHOOK_TOKEN": "", "SECRET_KEY": "browser-tests-only"})
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with AppServer(app) as server:
        yield Site(server.url, url, held_id, failed_id)
    app.extensions["smsgw.db"].dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's Chromium, headless, with no network but the loopback."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser, site: Site) -> Iterator[object]:
    """A fresh browser context (no cookies) and page, English, laptop-sized."""
    context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 860}, base_url=site.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def sign_in(page, account: tuple[str, str] = ADMIN) -> None:
    """Sign in through the form, as a person would."""
    page.goto("/admin/signin")
    page.fill("#email", account[0])
    page.fill("#password", account[1])
    submit(page, "#submit")


def submit(page, selector: str) -> None:
    """Click what sends a form (or follows a link) and wait for the page that comes back.

    A bare click returns once the next page has started to arrive: reading it at once can
    find the old page or a half-parsed new one on a loaded machine.
    """
    with page.expect_navigation():
        page.click(selector)


def screenshot(page, name: str) -> Path:
    """Save the page as test-artifacts/screenshots/<name>.png for review."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
