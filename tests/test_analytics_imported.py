"""``smsgw report dispersion`` on a real series imported into the database.

The WFP Kenya file goes in through ``smsgw import-prices`` (names, units and the anomaly
check as in production), and the report read back from the database must give the same
numbers as a plain computation on the raw file: while prices are held for review (they
are left out), and after an operator approves them.
"""
from __future__ import annotations

import decimal
import json
import re
from collections.abc import Iterator

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from smsgw.analytics.dispersion import HELD
from smsgw.cli import main
from smsgw.db import Database
from smsgw.models import PriceObservation
from smsgw.services.price_checks import HISTORY_FLAG
from tests.support.databases import ON_POSTGRES, fresh_database
from tests.support.dispersion import SHARED_DATA, compare, independent
from tests.support.prerequisites import prerequisite

KENYA = SHARED_DATA / "kenya_wfp_food_prices_ken_2006_2023.csv"
SOURCE = "import:wfp"
# The demo's own prices are recent; the WFP series ends in 2023.
WINDOW = ["--since", "2006-01-01", "--until", "2023-12-31"]
FREQS = {"month": ("M", "%Y-%m"), "week": ("W-SUN", "%G-W%V")}
pytestmark = prerequisite(KENYA.exists(), "shared/data is not beside the repository")


def _cli(url: str, *args: str) -> str:
    result = CliRunner().invoke(main, list(args), env={"DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture()
def imported(tmp_path) -> Iterator[str]:
    """A demo database with the WFP Kenya file imported (new markets created)."""
    with fresh_database(tmp_path, "postgresql" if ON_POSTGRES else "sqlite") as url:
        # The demo's past seasons (content/prices/history.csv) fall inside the file's years.
        db = Database(url)
        try:
            with db.session() as session:
                session.execute(sa.delete(PriceObservation).where(PriceObservation.source == "demo-history"))
        finally:
            db.dispose()
        _cli(url, "import-prices", str(KENYA), "--format", "wfp", "--create-missing")
        yield url


def raw_series(crop: str, kind: str) -> pd.DataFrame:
    """The file's rows of ``crop`` (any variety in parentheses) and ``kind``, per kg as stored.

    A price is stored to the cent and per kg to six decimals; ``key`` is the row's identity
    as the import records it (date, market, commodity, unit, kind, currency).
    """
    raw = pd.read_csv(KENYA, skiprows=[1], dtype=str)
    plain = raw["commodity"].str.replace(r"\([^)]*\)", "", regex=True).str.strip()
    rows = raw[(plain == crop) & (raw["pricetype"] == kind.capitalize())]
    kg = rows["unit"].map(lambda unit: decimal.Decimal(re.fullmatch(r"(\d+)? ?KG", unit)[1] or 1))
    cent, micro = decimal.Decimal("0.01"), decimal.Decimal("0.000001")
    per_kg = [
        float((decimal.Decimal(price).quantize(cent) / factor).quantize(micro))
        for price, factor in zip(rows["price"], kg, strict=True)
    ]
    names = [rows[column].str.lower().str.split().str.join(" ") for column in ("market", "commodity", "unit")]
    key = rows["date"].str.cat([*names, pd.Series(kind, index=rows.index), rows["currency"]], sep="|")
    return pd.DataFrame({"day": pd.to_datetime(rows["date"]), "market": rows["market"], "price": per_kg, "key": key})


def flagged_keys(url: str) -> set[str]:
    """The identities of imported prices approved with the history flag."""
    db = Database(url)
    try:
        with db.session() as session:
            return set(session.scalars(sa.select(PriceObservation.source_ref).where(
                PriceObservation.source == SOURCE, PriceObservation.status == "approved",
                PriceObservation.status_reason.startswith(HISTORY_FLAG))))
    finally:
        db.dispose()


def held_keys(url: str) -> set[str]:
    """The identities of the imported prices the anomaly check holds for review."""
    db = Database(url)
    try:
        with db.session() as session:
            return set(session.scalars(sa.select(PriceObservation.source_ref).where(
                PriceObservation.source == SOURCE, PriceObservation.status == "pending")))
    finally:
        db.dispose()


def check_report(url: str, crop: str, kind: str, expected: pd.DataFrame, held: int = 0) -> None:
    """Every frequency's JSON report, and the text report's row counts, against ``expected``."""
    args = ["report", "dispersion", "--commodity", crop, "--kind", kind, *WINDOW]
    for freq, (code, fmt) in FREQS.items():
        report = json.loads(_cli(url, *args, "--freq", freq, "--format", "json"))
        assert report["commodity"] == crop and report["freq"] == freq
        compare(report["periods"], independent(expected, code), fmt)
        assert report["rows_used"] == len(expected)
        assert sum(1 for row in report["excluded_rows"] if row["reason"].startswith(HELD)) == held
    text = _cli(url, *args)
    assert f"{len(expected)} approved rows used" in text
    if held:  # never "none" when rows were left out: counted and named
        assert f"Rows excluded: {held} {HELD}." in text and "left out: " in text
    else:
        assert "Rows excluded: none." in text


def _hold(url: str, keys: set[str]) -> None:
    """Put rows back in the review queue, as the anomaly check does with new prices."""
    db = Database(url)
    try:
        with db.session() as session:
            session.execute(sa.update(PriceObservation).where(PriceObservation.source == SOURCE,
                                                              PriceObservation.source_ref.in_(keys))
                            .values(status="pending", status_reason="test: held"))
    finally:
        db.dispose()


@pytest.mark.slow
def test_dispersion_of_the_imported_wfp_maize_matches_the_raw_file(imported: str) -> None:
    maize = raw_series("Maize", "wholesale")
    # The traps of this file: one crop under three names, quoted per kg and per 90 kg.
    assert maize["key"].str.split("|").str[2].nunique() == 3 and maize["key"].is_unique
    # History (older than the price maximum age) is judged as history: the anomaly check's
    # outliers, the 2008 and 2012 spikes among them, are flagged but not held.
    assert not maize["key"].isin(held_keys(imported)).any()
    assert flagged_keys(imported) & set(maize["key"]), "no maize price flagged: the check would prove nothing"
    check_report(imported, "maize", "wholesale", maize)
    # Rows held for review are left out, counted and named (never "Rows excluded: none").
    some = set(maize["key"].iloc[::50])
    _hold(imported, some)
    check_report(imported, "maize", "wholesale", maize[~maize["key"].isin(some)], held=len(some))
    _cli(imported, "prices", "approve", "--all", "--source", SOURCE)
    assert not held_keys(imported)
    check_report(imported, "maize", "wholesale", maize)


@pytest.mark.slow
def test_retail_dispersion_of_another_imported_crop(imported: str) -> None:
    _cli(imported, "prices", "approve", "--all", "--source", SOURCE)
    beans = raw_series("Beans", "retail")
    assert len(beans) > 500
    check_report(imported, "beans", "retail", beans)
