"""Every report path on an empty or partial database: an answer that says what is missing,
never a traceback (issue 19, item 8).

Databases: empty (migrated, nothing in it), prices only (catalog and approved prices, no
farmer, no subscription, no alias), sales only (farmers and their sales, no price at all),
and retail prices only (``report dispersion`` asks for wholesale by default).
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so
from click.testing import CliRunner

from smsgw.cli import main
from smsgw.db import Database
from smsgw.models import Commodity, Contact, Market, PriceObservation, SaleReport, Unit
from tests.support.databases import fresh_database

TODAY = dt.date.today()


def _catalog(session: so.Session) -> tuple[Unit, Commodity, list[Market]]:
    kg = Unit(code="kg", base="kg", factor=Decimal(1))
    session.add(kg)
    session.flush()
    crop = Commodity(code="maize", default_unit_id=kg.id, names={"en": "Maize"}, short_names={"en": "Maize"})
    markets = [Market(code=f"m{i}", name=f"Market {i}", short_name=f"M{i}", country="KE", region="R",
                      timezone="Africa/Nairobi", currency="KES") for i in range(4)]
    session.add_all([crop, *markets])
    session.flush()
    return kg, crop, markets


def _prices(session: so.Session, kind: str = "wholesale") -> None:
    kg, crop, markets = _catalog(session)
    for days_ago in range(0, 400, 9):
        for i, market in enumerate(markets):
            price = Decimal(30 + i + days_ago % 7)
            session.add(PriceObservation(
                commodity_id=crop.id, market_id=market.id, observed_on=TODAY - dt.timedelta(days=days_ago),
                amount=price, unit_id=kg.id, currency="KES", price_per_base=price, kind=kind, source="test",
                source_ref=f"t:{days_ago}:{i}", status="approved"))


def _sales(session: so.Session) -> None:
    kg, crop, markets = _catalog(session)
    for n in range(12):
        farmer = Contact(phone=f"+2547000001{n:02d}", village=f"v{n % 3}")
        session.add(farmer)
        session.flush()
        for days_ago in (3, 40, 100):
            session.add(SaleReport(
                contact_id=farmer.id, commodity_id=crop.id, market_id=markets[n % 4].id, quantity=Decimal(10),
                unit_id=kg.id, price=Decimal(25), currency="KES", price_per_base=Decimal(25), buyer_type="market",
                sold_on=TODAY - dt.timedelta(days=days_ago), channel="admin", source_ref=f"s:{n}:{days_ago}"))


FILLS: dict[str, Callable[[so.Session], None]] = {
    "empty": lambda session: None,
    "prices only": _prices,
    "retail only": lambda session: _prices(session, "retail"),
    "sales only": _sales,
}


@pytest.fixture(params=list(FILLS))
def partial(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    with fresh_database(tmp_path, "sqlite", seed=False) as url:
        db = Database(url)
        try:
            with db.session() as session:
                FILLS[request.param](session)
        finally:
            db.dispose()
        yield request.param, url


def _run(url: str, *args: str) -> str:
    result = CliRunner().invoke(main, ["report", *args], env={"DATABASE_URL": url})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 0, result.output
    return result.output


def test_report_bargaining_on_a_partial_database(partial: tuple[str, str], tmp_path: Path) -> None:
    name, url = partial
    text = _run(url, "bargaining", "--plots", str(tmp_path / "svg"))
    assert "Effect of enrolment" in text
    report = json.loads(_run(url, "bargaining", "--format", "json"))
    assert report["sales"]["total"] == (36 if name == "sales only" else 0)
    if name == "sales only":  # no price: every sale is left out, and says why
        assert report["sales"]["excluded"] == {"no wholesale price for this commodity, currency and unit": 36}
    assert all(row["state"] == "insufficient data" for row in report["rows"] if row["trend"]["n_points"] == 0
               and row["trend"]["test"] == "")
    _run(url, "bargaining", "--format", "csv")
    _run(url, "bargaining", "--plots", str(tmp_path / "png"), "--plot-format", "png")
    assert {p.suffix for p in (tmp_path / "png").iterdir()} == {".png"}
    assert {p.suffix for p in (tmp_path / "svg").iterdir()} == {".svg"}
    if name != "empty":
        _run(url, "bargaining", "--commodity", "maize", "--format", "json")


def test_report_dispersion_on_a_partial_database(partial: tuple[str, str], tmp_path: Path) -> None:
    name, url = partial
    if name == "empty":  # no commodity at all: a one-line refusal, not a traceback
        result = CliRunner().invoke(main, ["report", "dispersion", "--commodity", "maize"], env={"DATABASE_URL": url})
        assert result.exit_code == 1 and "unknown commodity: maize" in result.output
        return
    for fmt in ("text", "json", "csv"):
        _run(url, "dispersion", "--commodity", "maize", "--format", fmt, "--plots", str(tmp_path / fmt))
    report = json.loads(_run(url, "dispersion", "--commodity", "maize", "--format", "json"))
    if name == "prices only":
        assert report["trend"]["state"] != "insufficient data" or report["trend"]["slope_per_year"] is None
        assert any(p["n_markets"] == 4 for p in report["periods"])
    else:  # no wholesale price of maize: said so
        assert report["periods"] == [] and report["trend"]["state"] == "insufficient data"
        text = _run(url, "dispersion", "--commodity", "maize")
        assert "no approved wholesale price" in text
    if name == "retail only":
        retail = json.loads(_run(url, "dispersion", "--commodity", "maize", "--kind", "retail", "--format", "json"))
        assert any(p["n_markets"] == 4 for p in retail["periods"])


def test_analytics_loaders_on_an_empty_database(tmp_path: Path) -> None:
    from smsgw.analytics.config import AnalyticsConfig
    from smsgw.analytics.report import bargaining, load_inputs

    with fresh_database(tmp_path, "sqlite", seed=False) as url:
        db = Database(url)
        try:
            with db.session(read_only=True) as session:
                cfg = AnalyticsConfig()
                inputs = load_inputs(session.connection(), cfg)
                assert session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 0
        finally:
            db.dispose()
    import pandas as pd

    report = bargaining(inputs, cfg, pd.Timestamp(TODAY))
    assert report["sales"] == {"total": 0, "with_reference": 0, "excluded": {}, "reference_from_nearest_market": 0}
    assert report["enrolment"]["state"] == "insufficient data"


def _six_markets(session: so.Session) -> None:
    """Six markets with 13 months of prices: three served (farmers live there), three not;
    some prices held for review, one rejected."""
    kg, crop, markets = _catalog(session)
    markets += [Market(code=f"m{i}", name=f"Market {i}", short_name=f"M{i}", country="KE", region="R",
                       timezone="Africa/Nairobi", currency="KES") for i in range(4, 6)]
    session.add_all(markets[4:])
    session.flush()
    for i, market in enumerate(markets[:3]):
        session.add(Contact(phone=f"+2547000002{i:02d}", home_market_id=market.id))
    for days_ago in range(0, 400, 10):
        for i, market in enumerate(markets):
            price = Decimal(30 + (i % 3) + (3 * i if i >= 3 else 0) + days_ago % 5)
            status = "pending" if (days_ago, i) in {(50, 1), (120, 4)} else "rejected" if (days_ago, i) == (70, 2) \
                else "approved"
            session.add(PriceObservation(
                commodity_id=crop.id, market_id=market.id, observed_on=TODAY - dt.timedelta(days=days_ago),
                amount=price, unit_id=kg.id, currency="KES", price_per_base=price, kind="wholesale", source="test",
                source_ref=f"six:{days_ago}:{i}", status=status, status_reason="robust z 9" if status == "pending"
                else ""))


def test_dispersion_names_every_row_left_out_and_compares_served_markets(tmp_path: Path) -> None:
    with fresh_database(tmp_path, "sqlite", seed=False) as url:
        db = Database(url)
        try:
            with db.session() as session:
                _six_markets(session)
        finally:
            db.dispose()
        report = json.loads(_run(url, "dispersion", "--commodity", "maize", "--format", "json"))
        text = _run(url, "dispersion", "--commodity", "maize")
    held = "held for review by the anomaly check (not approved)"
    assert report["rows_excluded"] == {held: 2, "rejected by an operator": 1}
    assert report["rows_used"] == 6 * 40 - 3
    named = {(row["market"], row["reason"]) for row in report["excluded_rows"]}
    assert named == {("m1", held + ": robust z 9"), ("m4", held + ": robust z 9"), ("m2", "rejected by an operator")}
    assert f"Rows excluded: 2 {held}; 1 rejected by an operator." in text and text.count("  left out: ") == 3
    comparison = report["comparison"]
    assert comparison["available"] and (comparison["served_markets"], comparison["other_markets"]) == (3, 3)
    assert comparison["difference"] < 0 and comparison["ci"][1] < 0  # the served ones are closer together
    assert "Served markets (3) against the others (3)" in text


def test_zero_prices_are_counted_as_such_not_as_bad_prices() -> None:
    import pandas as pd

    from smsgw.analytics.config import AnalyticsConfig
    from smsgw.analytics.dispersion import ZERO, dispersion_report

    day = pd.Timestamp("2024-03-01")
    prices = pd.DataFrame({"day": [day] * 5, "market": ["a", "b", "c", "d", "e"], "commodity": "maize", "grade": "",
                           "price": [10.0, 11.0, 12.0, 0.0, float("nan")], "currency": "KES", "base": "kg",
                           "kind": "wholesale"})
    result = dispersion_report(prices, "maize", AnalyticsConfig())
    assert result["rows_used"] == 3 and result["rows_excluded"] == {ZERO: 2}
    assert [row["market"] for row in result["excluded_rows"]] == ["d", "e"]
    assert result["periods"][0]["n_markets"] == 3


def test_variety_chosen_the_same_whatever_the_row_order() -> None:
    import pandas as pd

    from smsgw.analytics.dispersion import choose_series

    day = pd.Timestamp("2024-03-01")
    prices = pd.DataFrame({"day": [day] * 4, "market": ["a", "b", "a", "b"], "commodity": "rice",
                           "grade": ["basmati", "basmati", "local", "local"], "price": [3.0, 4.0, 1.0, 2.0],
                           "currency": "KES", "base": "kg", "kind": "wholesale"})
    first, _ = choose_series(prices)
    second, _ = choose_series(prices.iloc[::-1])
    assert set(first["grade"]) == set(second["grade"]) == {"basmati"}
