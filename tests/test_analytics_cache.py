"""The analytics report: computed once per change of its data, kept in ``report_cache``.

A page view and its plots compute it once; the next view computes nothing; a new sale
or price makes the next view compute again; a report read back from the cache draws the
same plots, byte for byte, as a freshly computed one.
"""
from __future__ import annotations

import datetime as dt
import decimal
import html
import logging
import re
import threading
import uuid
from collections.abc import Callable

import pandas as pd
import pytest
import sqlalchemy as sa

from smsgw.analytics import cache, plots
from smsgw.analytics.render import public
from smsgw.db import Database, utcnow
from smsgw.models import Commodity, Contact, Market, PriceObservation, ReportCache
from smsgw.services.sales import report_sale
from smsgw.web.admin.i18n import local_today
from smsgw.web.admin.views.analytics import _dispersion_figure
from smsgw.web.database import get_db, get_session
from tests.support.databases import BACKENDS, fresh_database

pytest_plugins = ["tests.test_admin_fixtures"]

IMAGE = re.compile(r'<img src="([^"]+)"')
CSRF = re.compile(r'(name="csrf_token"[^>]*value=")[^"]+')


@pytest.fixture()
def computed(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every computation of the report, as (freq, commodity code)."""
    calls: list[tuple[str, str]] = []
    real = cache.compute

    def counting(conn: sa.Connection, freq: str, code: str, today: dt.date) -> dict:
        calls.append((freq, code))
        return real(conn, freq, code, today)

    monkeypatch.setattr(cache, "compute", counting)
    return calls


def _view(client, query: str = "") -> tuple[str, dict[str, bytes]]:
    """Open the analytics page and every plot it shows, as a browser does."""
    page = client.get(f"/admin/analytics{query}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    images = {}
    for src in map(html.unescape, IMAGE.findall(text)):
        image = client.get(src)
        assert image.status_code == 200 and image.mimetype == "image/png", src
        images[src.split("?")[0].rsplit("/", 1)[-1]] = image.data
    assert len(images) == 4, images.keys()
    return CSRF.sub(r"\1", text), images  # without the form token (it carries a time)


def _add_sale(app) -> None:
    with app.app_context():
        session = get_session()
        farmer = session.scalar(sa.select(Contact).where(Contact.phone == "+254700000001"))
        maize = session.scalar(sa.select(Commodity).where(Commodity.code == "maize"))
        report_sale(session, farmer, commodity=maize, quantity=decimal.Decimal(3), unit=maize.default_unit,
                    price=decimal.Decimal(4100), buyer_type="market", sold_on=dt.date.today(), channel="admin",
                    source_ref=f"test:{uuid.uuid4().hex}")
        session.commit()


def _add_price(app, status: str) -> int:
    with app.app_context():
        session = get_session()
        market = session.scalar(sa.select(Market).where(Market.code == "nakuru"))
        maize = session.scalar(sa.select(Commodity).where(Commodity.code == "maize"))
        unit, amount = maize.default_unit, decimal.Decimal(4400)
        row = PriceObservation(
            commodity_id=maize.id, market_id=market.id, observed_on=dt.date.today(), amount=amount, unit_id=unit.id,
            currency=market.currency, price_per_base=(amount / unit.factor).quantize(decimal.Decimal("0.000001")),
            kind="wholesale", source="sms", source_ref=f"test:{uuid.uuid4().hex}", status=status,
        )
        session.add(row)
        session.commit()
        return row.id


def test_a_view_computes_the_report_once_and_again_only_after_a_change(app, operator, computed) -> None:
    first, images = _view(operator)
    assert computed == [("month", "")], "the page and its plots compute the report once"
    second, again = _view(operator)
    assert computed == [("month", "")] and second == first and again == images

    _add_sale(app)
    # A plot alone is drawn from the report its page was computed with (the browser keeps
    # plots as long); the page itself sees the new sale.
    assert operator.get("/admin/analytics/figures/price_share.png").data == images["price_share.png"]
    assert len(computed) == 1
    page, _ = _view(operator)
    assert len(computed) == 2 and page != first  # one more sale reported

    price = _add_price(app, "pending")
    _view(operator)
    assert len(computed) == 3
    with app.app_context():  # approving a price adds no row: its status and time count too
        session = get_session()
        session.execute(sa.update(PriceObservation).where(PriceObservation.id == price).values(status="approved"))
        session.commit()
    _view(operator)
    _view(operator)
    assert len(computed) == 4


def test_each_selection_is_cached_on_its_own(operator, computed) -> None:
    _view(operator, "?freq=week&commodity=maize")
    _view(operator, "?freq=month&commodity=maize")
    _view(operator, "?freq=week&commodity=maize")
    assert computed == [("week", "maize"), ("month", "maize")]


def test_plots_served_from_the_cache_are_those_of_a_fresh_report(app, operator, connection) -> None:
    _, images = _view(operator)
    assert _view(operator)[1] == images  # the second time from the cache
    with app.app_context():
        fresh = cache.compute(connection, "month", "", local_today())
        session = get_session()
        direct = _dispersion_figure(session, "month", "beans")
    drawn = plots.report_figures(fresh)
    for name in ("price_share", "event_study", "group_premium"):
        assert images[f"{name}.png"] == plots.render(drawn[name], "png"), name
    spread = next(name for name in images if name.startswith("dispersion_"))
    commodity = spread.removeprefix("dispersion_").removesuffix(".png")
    expected = plots.dispersion_of(fresh, commodity)
    assert images[spread] == plots.render(expected, "png")
    # The spread drawn from the report's table is the one read straight from the prices.
    beans = operator.get("/admin/analytics/figures/dispersion_beans.png").data
    assert beans == plots.render(direct, "png")
    assert operator.get("/admin/analytics/figures/dispersion_nothing.png").status_code == 404


@pytest.mark.parametrize(("freq", "code"), [("month", ""), ("week", ""), ("month", "maize"), ("week", "onion")])
def test_the_report_round_trips_through_json(connection, freq: str, code: str) -> None:
    report = cache.compute(connection, freq, code, dt.date.today())
    back = cache.decode(cache.encode(report))
    assert public(back) == public(report)
    assert back["series"].keys() == report["series"].keys()
    for name in ("share_band", "premiums", "event_study"):
        pd.testing.assert_frame_equal(back["series"][name], report["series"][name], check_exact=True)
    assert back["series"]["dispersion"].keys() == report["series"]["dispersion"].keys()
    for commodity, table in report["series"]["dispersion"].items():
        pd.testing.assert_frame_equal(back["series"]["dispersion"][commodity], table, check_exact=True)
    ours, theirs = plots.report_figures(back), plots.report_figures(report)
    assert ours.keys() == theirs.keys()
    for name in ("price_share", "event_study", "group_premium"):
        assert plots.render(ours[name], "png") == plots.render(theirs[name], "png"), name


def test_empty_frames_round_trip() -> None:
    empty = {"series": {"share_band": pd.DataFrame(), "dispersion": {}}, "rows": []}
    back = cache.decode(cache.encode(empty))
    assert back["series"]["share_band"].empty and back["series"]["dispersion"] == {}


def test_a_cache_that_cannot_be_written_does_not_fail_the_page(app, operator, computed, monkeypatch, caplog) -> None:
    database = get_db(app)
    reading = database.session

    def no_writes(read_only: bool = False):
        if not read_only:
            raise sa.exc.OperationalError("INSERT INTO report_cache", {}, Exception("database is locked"))
        return reading(read_only=True)

    monkeypatch.setattr(database, "session", no_writes)
    with caplog.at_level(logging.WARNING, logger="smsgw.analytics.cache"):
        assert operator.get("/admin/analytics").status_code == 200
    assert "not cached" in caplog.text
    assert operator.get("/admin/analytics").status_code == 200
    assert len(computed) == 2  # nothing was kept, so it computes again


# With a database of the test's own: sessions that really commit, from several threads.

@pytest.fixture(params=BACKENDS)
def own(request: pytest.FixtureRequest, tmp_path) -> Database:
    """A fresh, seeded database of this test's own (not the rolled-back test transaction)."""
    with fresh_database(tmp_path, request.param) as url:
        database = Database(url)
        try:
            yield database
        finally:
            database.dispose()


def _rows(database: Database) -> list[ReportCache]:
    with database.session(read_only=True) as session:
        return list(session.scalars(sa.select(ReportCache)))


def test_the_cache_row_is_committed_and_outlives_its_request(own: Database, computed) -> None:
    today = dt.date.today()
    report = cache.cached_report(own, "month", "", today)
    [row] = _rows(own)
    with own.session(read_only=True) as session:
        assert row.key == "bargaining:month:" and row.fingerprint == cache.fingerprint(session.connection(), today)
    assert utcnow() - row.computed_at < dt.timedelta(minutes=1)
    assert public(cache.cached_report(own, "month", "", today)) == public(report)
    assert cache.recent_report(own, "month", "", dt.timedelta(minutes=5)) is not None
    assert cache.recent_report(own, "week", "", dt.timedelta(minutes=5)) is None
    assert len(computed) == 1
    cache.cached_report(own, "month", "", today + dt.timedelta(days=1))  # the report depends on "today"
    assert len(computed) == 2 and len(_rows(own)) == 1


def test_two_computations_at_once_both_succeed_and_the_last_write_wins(own: Database, monkeypatch) -> None:
    both_reading = threading.Barrier(2, timeout=60)
    real: Callable = cache.compute

    def together(conn: sa.Connection, freq: str, code: str, today: dt.date) -> dict:
        both_reading.wait()  # both are inside their read transactions, neither has stored
        return real(conn, freq, code, today)

    monkeypatch.setattr(cache, "compute", together)
    results: list[dict] = []
    errors: list[BaseException] = []

    def view() -> None:
        try:
            results.append(cache.cached_report(own, "month", "maize", dt.date.today()))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=view) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and len(results) == 2
    assert public(results[0]) == public(results[1])
    [row] = _rows(own)
    assert row.key == "bargaining:month:maize" and public(cache.decode(row.body)) == public(results[0])
