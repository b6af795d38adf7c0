"""Benchmark 6: ``smsgw import-prices`` on the Kenyan WFP file and a generated generic file.

Both run in child processes (their own peak RSS) against a throwaway database with the
demo catalog; the generic file names demo markets and crops as people write them.
"""
from __future__ import annotations

import csv
import datetime as dt
import tempfile
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from tests.benchmarks import seed
from tests.benchmarks.common import Scale, create_database, drop_database, log, run_child

WFP = "kenya_wfp_food_prices_ken_2006_2023.csv"
KINDS = ("wholesale", "retail", "farm-gate")
TARGET_ROWS_PER_S = 20_000


def write_generic(url: str, path: Path, rows: int, today: dt.date) -> int:
    """A generic price file of ``rows`` rows: every market, crop and kind, day after day."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        series = conn.execute(sa.text(
            "SELECT m.name, c.code, u.code, m.currency, m.country, avg(p.amount)::float"
            " FROM price_observation p JOIN market m ON m.id = p.market_id JOIN commodity c ON c.id = p.commodity_id"
            " JOIN unit u ON u.id = p.unit_id WHERE p.kind = 'wholesale' AND u.id = c.default_unit_id"
            " GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2"
        )).all()
    engine.dispose()
    per_day = len(series) * len(KINDS)
    days = -(-rows // per_day)
    start = today - dt.timedelta(days=days)
    noise = np.random.default_rng(3).lognormal(0, 0.04, rows)
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["date", "market", "commodity", "unit", "price", "currency", "kind", "country"])
        for n in range(rows):
            day, rest = divmod(n, per_day)
            (market, crop, unit, currency, country, level), kind = series[rest // len(KINDS)], KINDS[rest % len(KINDS)]
            scale = {"wholesale": 1.0, "retail": 1.2, "farm-gate": 0.8}[kind]
            out.writerow([(start + dt.timedelta(days=day)).isoformat(), market, crop, unit,
                          f"{level * scale * noise[n]:.2f}", currency, kind, country])
    return days


def _rate(result: dict, rows: int) -> dict:
    return {**result, "rows": rows, "rows_per_s": round(rows / result["seconds"], 1) if result["seconds"] else None}


def run(scale: Scale, data_dir: str, profile: str | None = None) -> dict:
    """Import the WFP file, then the generated file; rows/s and peak RSS of each."""
    today = dt.date.today()
    name, url = create_database()
    try:
        seed.create(url, today)
        with open(f"{data_dir}/{WFP}", encoding="utf-8") as handle:
            wfp_rows = sum(1 for _ in handle) - 2  # header and HXL tag row
        log(f"import: WFP file, {wfp_rows:,} rows")
        wfp = _rate(
            run_child("cli", ["import-prices", f"{data_dir}/{WFP}", "--format", "wfp", "--create-missing"], url),
            wfp_rows,
        )
        with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
            path = Path(tmp) / "generic.csv"
            days = write_generic(url, path, scale.import_rows, today)
            log(f"import: generic file, {scale.import_rows:,} rows over {days:,} days")
            generic = _rate(
                run_child("cli", ["import-prices", str(path), "--format", "generic"], url, profile), scale.import_rows
            )
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            stored = dict(conn.execute(sa.text("SELECT source, count(*) FROM price_observation GROUP BY source")).all())
        engine.dispose()
    finally:
        drop_database(name)
    return {
        "wfp": wfp,
        "generic": generic,
        "stored_by_source": stored,
        "targets": {
            "wfp_over_20k_rows_per_s": (wfp["rows_per_s"] or 0) > TARGET_ROWS_PER_S,
            "generic_over_20k_rows_per_s": (generic["rows_per_s"] or 0) > TARGET_ROWS_PER_S,
        },
    }
