"""The analytics on the database: the demo season, the loaders and ``smsgw report``."""
from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import math
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from smsgw.analytics import data, report
from smsgw.analytics.config import AnalyticsConfig
from smsgw.cli import main
from smsgw.config import PROJECT_ROOT
from smsgw.db import Database
from smsgw.models import Commodity, Contact, GroupOrder, Market, PriceObservation, SaleReport, Unit
from smsgw.services.seeding import seed_demo
from tests.support.databases import ON_POSTGRES, fresh_database

CONTENT = PROJECT_ROOT / "content"


def _demo_lines() -> int:
    with (CONTENT / "sales.csv").open(newline="", encoding="utf-8") as handle:
        return sum(1 for _ in csv.DictReader(handle))


def _count(session, model, *where) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def test_demo_season_is_loaded_once(session) -> None:
    demo = SaleReport.source_ref.like("demo:%")
    before = (_count(session, SaleReport, demo), _count(session, GroupOrder))
    assert before[0] == _demo_lines()
    assert _count(session, GroupOrder, GroupOrder.status == "fulfilled") >= 3
    assert _count(session, SaleReport, SaleReport.channel != "seed", demo) == 0
    result = seed_demo(session, CONTENT, dt.date.today())
    assert result == {"prices_added": 0, "sales_added": 0}
    assert (_count(session, SaleReport, demo), _count(session, GroupOrder)) == before


def test_loaders_read_the_demo(connection) -> None:
    sales = data.load_sales(connection)
    assert len(sales) >= _demo_lines() and sales["price"].dtype == "float64"
    assert set(sales["buyer_type"]) >= {"farm_gate_trader", "market", "group_order"}
    orders = data.load_orders(connection)
    fulfilled = orders[orders["status"] == "fulfilled"]
    assert (fulfilled["price"] > 0).all() and (fulfilled["quantity"] > 0).all()
    people = data.load_people(connection)
    assert people["enrolled"].notna().sum() >= 18
    assert list(data.find_commodities(connection, "MAHINDI")["code"]) == ["maize"]
    assert list(data.find_commodities(connection, "Mais")["code"]) == ["maize"]


def _informed(connection) -> dict:
    cfg = AnalyticsConfig()
    result = report.bargaining(report.load_inputs(connection, cfg), cfg, pd.Timestamp(dt.date.today()))
    return next(r for r in result["rows"] if (r["indicator"], r["dimension"]) == ("informed_sales", "all"))


def test_a_sale_after_a_ussd_price_look_up_is_informed(client, connection) -> None:
    phone = "+254700000002"
    before = _informed(connection)
    for text in ("", "1", "1*1", "1*1*1"):  # prices -> maize -> home market: the price
        answer = client.post("/at/ussd", data={"sessionId": "informed-1", "phoneNumber": phone, "text": text})
        assert answer.get_data(as_text=True).startswith("CON ")
    fields = {"from": phone, "to": "22384", "text": "SOLD 10bag90 maize 3000", "id": "at-informed-1"}
    assert client.post("/at/sms", data=fields).status_code == 200
    after = _informed(connection)
    assert after["n"] == before["n"] + 1
    assert after["value"] * after["n"] == pytest.approx(before["value"] * before["n"] + 1)


def _invoke(database_url: str, *args: str):
    return CliRunner().invoke(main, ["report", *args], env={"DATABASE_URL": database_url}, catch_exceptions=False)


def test_report_bargaining_formats(database_url: str, tmp_path: Path) -> None:
    text = _invoke(database_url, "bargaining", "--plots", str(tmp_path))
    assert text.exit_code == 0, text.output
    assert "Primary indicator: farmer price share" in text.output
    assert "excluded" in text.output and "Effect of enrolment" in text.output
    svgs = sorted(p.name for p in tmp_path.glob("*.svg"))
    assert {"price_share.svg", "event_study.svg", "group_premium.svg", "dispersion_maize.svg"} <= set(svgs)
    assert "Source:" in (tmp_path / "price_share.svg").read_text("utf-8")
    report = json.loads(_invoke(database_url, "bargaining", "--format", "json", "--commodity", "maize").output)
    assert report["primary_indicator"] == "price_share"
    assert report["sales"]["excluded"]
    first = report["rows"][0]
    assert (first["indicator"], first["dimension"]) == ("price_share", "all")
    assert {"value", "ci", "state", "n", "trend"} <= set(first)
    assert 0.5 < first["value"] < 1.0
    states = {"improving", "worsening", "no detectable change", "insufficient data"}
    assert all(row["state"] in states for row in report["rows"])
    table = list(
        csv.DictReader(io.StringIO(_invoke(database_url, "bargaining", "--format", "csv", "--region", "Nakuru").output))
    )
    assert table[0]["indicator"] == "price_share" and table[-1]["indicator"] == "enrolment_effect_pct"


def _hand_made_season(url: str, today: dt.date) -> None:
    """A crop of its own in Nakuru: four prices, two sales that have a reference, two that have not."""
    db = Database(url)
    try:
        with db.session() as session:
            kg = session.scalar(sa.select(Unit).where(Unit.code == "kg"))
            bag = session.scalar(sa.select(Unit).where(Unit.code == "bag90"))
            nakuru = session.scalar(sa.select(Market).where(Market.code == "nakuru"))
            kaolack = session.scalar(sa.select(Market).where(Market.code == "kaolack"))
            crop = Commodity(
                code="testcrop", default_unit_id=kg.id, names={"en": "Test crop"}, short_names={"en": "Test"}
            )
            session.add(crop)
            session.flush()
            # The median of the last 3 days is 50; the latest alone (62), their mean (52) or a
            # window one day longer (47: the 10 of 4 days ago) would all give other shares.
            for days_ago, price in ((1, 62), (2, 50), (3, 44), (4, 10)):  # per kg
                session.add(PriceObservation(
                    commodity_id=crop.id, market_id=nakuru.id, observed_on=today - dt.timedelta(days=days_ago),
                    amount=Decimal(price), unit_id=kg.id, currency="KES", price_per_base=Decimal(price),
                    kind="wholesale", source="hand", source_ref=f"hand:{days_ago}", status="approved",
                ))
            farmers = {c.phone: c.id for c in session.scalars(sa.select(Contact).where(Contact.phone.in_(
                ["+254700000001", "+254700000002", "+254700000003", "+221770000001"])))}
            sales = [  # phone, market, quantity, unit, price per unit, per kg, currency, days ago
                ("+254700000001", nakuru, 10, kg, 40, 40, "KES", 0),
                ("+254700000002", nakuru, 30, kg, 45, 45, "KES", 0),
                ("+254700000003", nakuru, 1, bag, 4500, 50, "KES", 20),  # no price in the 7 days before
                ("+221770000001", kaolack, 5, kg, 300, 300, "XOF", 0),  # no price in XOF at all
            ]
            for n, (phone, market, quantity, unit, price, per_kg, currency, days_ago) in enumerate(sales):
                session.add(SaleReport(
                    contact_id=farmers[phone], commodity_id=crop.id, market_id=market.id, quantity=Decimal(quantity),
                    unit_id=unit.id, price=Decimal(price), currency=currency, price_per_base=Decimal(per_kg),
                    buyer_type="market", sold_on=today - dt.timedelta(days=days_ago), channel="admin",
                    source_ref=f"hand:{n}",
                ))
    finally:
        db.dispose()


def test_report_bargaining_values_on_a_hand_made_season(tmp_path: Path) -> None:
    """The figures, worked out by hand: the reference of a sale today is the median of the
    prices of the 3 days before (62, 50, 44: 50 KES/kg), so the shares are 40/50 and 45/50,
    and the price share is their geometric mean weighted by the 10 and 30 kg sold."""
    today = dt.date.today()
    with fresh_database(tmp_path, "postgresql" if ON_POSTGRES else "sqlite") as url:
        _hand_made_season(url, today)
        result = _invoke(url, "bargaining", "--format", "json", "--commodity", "testcrop")
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        table = _invoke(url, "bargaining", "--format", "csv", "--commodity", "testcrop").output
    table = list(csv.DictReader(io.StringIO(table)))
    share = math.exp((10 * math.log(0.8) + 30 * math.log(0.9)) / 40)  # 0.873...
    assert report["sales"]["total"] == 4 and report["sales"]["with_reference"] == 2
    assert report["sales"]["excluded"] == {
        "no wholesale price in the 7 days up to the sale": 1,
        "no wholesale price for this commodity, currency and unit": 1,
    }
    rows = {(row["indicator"], row["dimension"], row["cell"]): row for row in report["rows"]}
    cells = [("price_share", "all", "all"), ("price_share", "commodity", "testcrop"),
             ("price_share", "market", "nakuru")]
    for key in cells:
        assert rows[key]["value"] == pytest.approx(share, rel=1e-12), key
        # Both farmers live in one village: one cluster (prices are correlated within villages).
        assert (rows[key]["n"], rows[key]["clusters"]) == (2, 1), key
    assert rows["price_share", "all", "all"]["detail"] == pytest.approx({"median": 0.85, "q1": 0.825, "q3": 0.875})
    assert rows["log_discount", "all", "all"]["value"] == pytest.approx(-math.log(share), rel=1e-12)
    assert rows["net_share", "all", "all"]["value"] == pytest.approx(share, rel=1e-12)  # no transport costs
    assert rows["buyer_hhi", "all", "all"]["value"] == pytest.approx(1.0)  # everything sold at the market
    # Two sales are far too few for a trend: no state is claimed.
    assert rows["price_share", "all", "all"]["state"] == "insufficient data"
    first = next(row for row in table if (row["indicator"], row["dimension"]) == ("price_share", "all"))
    assert float(first["value"]) == pytest.approx(share, rel=1e-6)


def test_report_dispersion_matches_an_independent_computation(database_url: str) -> None:
    result = _invoke(database_url, "dispersion", "--commodity", "mahindi", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report) == {"commodity", "freq", "periods", "trend", "rows_used", "rows_excluded", "excluded_rows",
                           "comparison"}
    assert set(report["trend"]) == {"slope_per_year", "ci", "state"}
    raw = pd.read_csv(CONTENT / "prices" / "kenya.csv")
    maize = raw[(raw["commodity"] == "maize") & (raw["kind"] == "wholesale")]
    today = pd.Timestamp(dt.date.today())
    maize = maize.assign(month=(today - pd.to_timedelta(maize["days_ago"], unit="D")).dt.strftime("%Y-%m"),
                         per_kg=(maize["price"] / 90).round(6))
    # Past seasons' monthly prices (content/prices/history.csv, dated the 15th), before the daily window.
    past = pd.read_csv(CONTENT / "prices" / "history.csv")
    past = past[(past["commodity"] == "maize") & (past["kind"] == "wholesale")]
    day = pd.to_datetime(pd.DataFrame({"year": today.year - past["years_ago"], "month": past["month"], "day": 15}))
    past = past[day < today - pd.Timedelta(days=125)].assign(month=day.dt.strftime("%Y-%m"))
    maize = pd.concat([maize, past.assign(per_kg=(past["price"] / 90).round(6))])
    for period in report["periods"]:
        medians = maize[maize["month"] == period["period"]].groupby("market")["per_kg"].median().to_numpy()
        assert period["n_markets"] == len(medians)
        if len(medians) < 3:  # the past seasons' two markets: too few for a spread
            assert period["cv"] is None and period["mean_abs_log_diff"] is None
            continue
        cv = medians.std() / medians.mean()
        pairs = [abs(math.log(a / b)) for a, b in itertools.combinations(medians, 2)]
        assert abs(period["cv"] - cv) < 1e-9
        assert abs(period["mean_abs_log_diff"] - sum(pairs) / len(pairs)) < 1e-9
    text = _invoke(database_url, "dispersion", "--commodity", "maize", "--freq", "week")
    assert "Source: smsgw database" in text.output and "Trend of the CV" in text.output


def test_report_unknown_commodity(database_url: str) -> None:
    result = _invoke(database_url, "dispersion", "--commodity", "nosuchcrop")
    assert result.exit_code == 1 and "unknown commodity: nosuchcrop" in result.output
