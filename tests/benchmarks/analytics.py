"""Benchmark 5: ``smsgw report bargaining`` over generated sales and reference prices,
and the dispersion of every commodity in the three real price files.

Sales and prices are written with COPY into a throwaway database: each farmer sells the
crops of their country at their home market, at a share of the day's wholesale price
that rises a little after they enrol, so every indicator has something to measure.
"""
from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pandas as pd
import psycopg
import sqlalchemy as sa

from tests.benchmarks import seed
from tests.benchmarks.common import (
    Scale,
    create_database,
    drop_database,
    log,
    psycopg_dsn,
    run_child,
)

FILES = (
    "kenya_wfp_food_prices_ken_2006_2023.csv",
    "ghana_mofa_weekly_prices_2009_2014_long.csv",
    "india_agmarknet_malabar_daily_2021_2026.csv",
)
FARMERS = {"small": 5_000, "full": 20_000}
OBSERVATIONS_PER_DAY = 2
TARGET_SECONDS, TARGET_MB = 30, 2048


def _copy(url: str, table: str, frame: pd.DataFrame) -> None:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False)
    with psycopg.connect(psycopg_dsn(url)) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY {table} ({', '.join(frame.columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')") as copy:
            copy.write(buffer.getvalue())
        conn.commit()


def _series(url: str) -> pd.DataFrame:
    """(market, commodity, unit, factor, currency, level per base unit) for every crop of every market."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        frame = pd.read_sql(
            sa.text(
                "SELECT p.market_id, p.commodity_id, c.default_unit_id AS unit_id, u.factor::float AS factor,"
                " m.currency, avg(p.price_per_base)::float AS level"
                " FROM price_observation p JOIN commodity c ON c.id = p.commodity_id JOIN unit u ON u.id = "
                "c.default_unit_id"
                " JOIN market m ON m.id = p.market_id"
                " WHERE p.kind = 'wholesale' AND c.kind = 'produce' GROUP BY 1, 2, 3, 4, 5"
            ),
            conn,
        )
    engine.dispose()
    return frame


def generate(url: str, sales: int, prices: int, today: dt.date, rng: np.random.Generator) -> dict:
    """COPY ``prices`` approved wholesale observations and ``sales`` sale reports."""
    series = _series(url)
    days = int(np.ceil(prices / (len(series) * OBSERVATIONS_PER_DAY)))
    start = today - dt.timedelta(days=days - 1)
    # Reference prices: per series a slow random walk with a yearly season.
    pick = np.arange(prices) % len(series)
    day_index = np.arange(prices) // (len(series) * OBSERVATIONS_PER_DAY)
    walk = np.exp(np.cumsum(rng.normal(0, 0.01, size=(days, len(series))), axis=0))
    season = 1 + 0.15 * np.sin(2 * np.pi * np.arange(days) / 365.25)[:, None]
    per_base = (
        series["level"].to_numpy()[pick] * walk[day_index, pick] * season[day_index, 0] * rng.lognormal(0, 0.03, prices)
    )
    factor = series["factor"].to_numpy()[pick]
    observed = pd.to_datetime(start) + pd.to_timedelta(day_index, unit="D")
    reference = pd.DataFrame({
        "commodity_id": series["commodity_id"].to_numpy()[pick], "market_id": series["market_id"].to_numpy()[pick],
        "observed_on": observed.strftime("%Y-%m-%d"), "amount": np.round(per_base * factor, 2),
        "unit_id": series["unit_id"].to_numpy()[pick], "currency": series["currency"].to_numpy()[pick],
        "price_per_base": np.round(per_base, 6), "kind": "wholesale", "source": "bench-ref",
        "source_ref": [f"r{i}" for i in range(prices)], "status": "approved", "status_reason": "",
        "created_at": pd.Timestamp.now(tz="UTC").isoformat(),
    })
    _copy(url, "price_observation", reference)
    log(f"analytics: {prices:,} reference prices over {days:,} days")
    del reference
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        farmers = pd.read_sql(
            sa.text("SELECT id, home_market_id FROM contact WHERE name LIKE 'Bench %' ORDER BY id"), conn
        )
        # Enrolment spread over the period, so there are sales before and after it.
        conn.execute(
            sa.text(
                "UPDATE contact SET enrolled_at = now() - (random() * :d || ' days')::interval WHERE name LIKE 'Bench "
                "%'"
            ),
            {"d": days},
        )
        enrolled = pd.read_sql(
            sa.text("SELECT id, enrolled_at FROM contact WHERE name LIKE 'Bench %' ORDER BY id"), conn
        )
    engine.dispose()
    who = rng.integers(0, len(farmers), sales)
    farmer_ids = farmers["id"].to_numpy()[who]
    home = farmers["home_market_id"].to_numpy()[who]
    # One of the farmer's market's crops, on a day with a reference price.
    crops = series.groupby("market_id").indices
    choice = np.array([crops[m][k % len(crops[m])] for m, k in zip(home, rng.integers(0, 4, sales), strict=True)])
    sold_index = rng.integers(0, days, sales)
    sold_on = pd.to_datetime(start) + pd.to_timedelta(sold_index, unit="D")
    after = (
        sold_on.to_numpy()
        > pd.to_datetime(enrolled["enrolled_at"].to_numpy()[who], utc=True).tz_localize(None).to_numpy()
    )
    share = 0.72 + 0.06 * after + rng.normal(0, 0.05, sales)
    price_base = series["level"].to_numpy()[choice] * walk[sold_index, choice] * season[sold_index, 0] * share
    factor = series["factor"].to_numpy()[choice]
    sale_frame = pd.DataFrame({
        "contact_id": farmer_ids, "commodity_id": series["commodity_id"].to_numpy()[choice], "market_id": home,
        "quantity": rng.integers(1, 30, sales), "unit_id": series["unit_id"].to_numpy()[choice],
        "price": np.round(price_base * factor, 2), "currency": series["currency"].to_numpy()[choice],
        "price_per_base": np.round(price_base, 6),
        "buyer_type": rng.choice(["farm_gate_trader", "market", "processor"], sales, p=[0.5, 0.4, 0.1]),
        "sold_on": sold_on.strftime("%Y-%m-%d"), "channel": "ussd", "source_ref": [f"bench:{i}" for i in range(sales)],
        "created_at": pd.Timestamp.now(tz="UTC").isoformat(),
    })
    _copy(url, "sale_report", sale_frame)
    log(f"analytics: {sales:,} sale reports")
    seed.analyze(url)
    return {"reference_prices": prices, "sale_reports": sales, "days": days, "farmers": len(farmers)}


def run(scale: Scale, data_dir: str, profile: str | None = None) -> dict:
    """Generate, run ``report bargaining`` and the file dispersions in child processes."""
    today = dt.date.today()
    rng = np.random.default_rng(7)
    name, url = create_database()
    try:
        world = seed.create(url, today)
        seed.add_farmers(url, world, 0, FARMERS[scale.name])
        data = generate(url, scale.sales, scale.reference_prices, today, rng)
        log("analytics: report bargaining")
        bargaining = run_child("cli", ["report", "bargaining", "--format", "json"], url, profile)
        log(
            f"analytics: bargaining {bargaining['seconds']} s, {bargaining['peak_rss_mb']} MiB; dispersion of the "
            "real files"
        )
    finally:
        drop_database(name)
    dispersion = run_child("dispersion", [f"{data_dir}/{file}" for file in FILES])
    return {
        "data": data,
        "bargaining": bargaining,
        "dispersion": dispersion,
        "targets": {
            "bargaining_under_30_s": bargaining["seconds"] < TARGET_SECONDS and bargaining["exit_code"] == 0,
            "bargaining_under_2_gb": bargaining["peak_rss_mb"] < TARGET_MB,
        },
    }
