"""Price imports: formats, matching, units, idempotency, malformed files, and the CLI."""

from __future__ import annotations

import datetime as dt
import decimal
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from smsgw.cli import main
from smsgw.db import Database
from smsgw.models import Commodity, CommodityAlias, Market, PriceObservation, Unit
from smsgw.services.price_checks import Policy
from smsgw.services.price_files import ImportFileError, check_file
from smsgw.services.price_import import import_prices
from smsgw.services.price_review import approve_all, count_pending
from smsgw.services.prices import latest_quote, price_on_or_before
from tests.support.databases import fresh_database
from tests.support.dispersion import SHARED_DATA
from tests.support.prerequisites import prerequisite

DATA = Path(__file__).parent / "data"
WFP_FILE = SHARED_DATA / "kenya_wfp_food_prices_ken_2006_2023.csv"
needs_wfp = prerequisite(WFP_FILE.exists(), "shared/data is not beside the repository")
TRUSTED = Policy(trusted_sources=frozenset({"import:test"}))


def _count(session, model=PriceObservation, *where) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def _market(session, code: str) -> Market:
    return session.scalars(sa.select(Market).where(Market.code == code)).one()


def test_generic_file_matches_normalises_and_is_idempotent(session) -> None:
    summary = import_prices(
        session,
        DATA / "generic_prices.csv",
        "generic",
        source="import:test",
        create_missing=True,
        policy=TRUSTED,
    )
    assert (summary.rows_read, summary.imported, summary.rejected_count) == (6, 6, 0), (
        summary.rejected
    )
    assert summary.created["markets"] == ["Kitale"] and summary.created["commodities"] == [
        "Green grams (mung)"
    ]
    rows = {
        (row.market.code, row.kind, row.unit.code): row
        for row in session.scalars(
            sa.select(PriceObservation).where(PriceObservation.source == "import:test")
        )
    }
    assert rows[("nakuru", "wholesale", "bag90")].price_per_base == 50
    assert rows[("nakuru", "retail", "kg")].amount == decimal.Decimal("52.50")
    assert rows[("eldoret", "farm_gate", "quintal")].price_per_base == 50  # 100 kg
    assert rows[("nairobi-wakulima", "wholesale", "bag90")].grade.code == "G1"
    kitale = _market(session, "kitale")
    assert (kitale.country, kitale.currency, kitale.timezone) == ("KE", "KES", "Africa/Nairobi")
    thirteen = session.scalars(sa.select(Unit).where(Unit.base == "kg", Unit.factor == 13)).one()
    assert rows[("kitale", "wholesale", thirteen.code)].price_per_base == 150
    again = import_prices(
        session,
        DATA / "generic_prices.csv",
        "generic",
        source="import:test",
        create_missing=True,
        policy=TRUSTED,
    )
    assert (again.imported, again.duplicates, again.created["markets"]) == (0, 6, [])
    assert _count(session, PriceObservation, PriceObservation.source == "import:test") == 6


def test_unknown_names_are_reported_without_create_missing(session) -> None:
    summary = import_prices(
        session, DATA / "generic_prices.csv", "generic", source="import:test", policy=TRUSTED
    )
    assert summary.imported == 4
    assert dict(summary.rejected) == {
        6: "unknown market 'Kitale'",
        7: "unit '13 kg' (13 kg) is not in the catalog (--create-missing adds it)",
    }


MALFORMED = {
    3: "bad date '2024-13-01' (expected YYYY-MM-DD)",
    4: "bad date '05/02/2024' (expected YYYY-MM-DD)",
    5: "price -4500 is not above 0",
    6: "price 'abc' is not a number",
    7: "unknown currency 'XYZ' (expected an ISO 4217 code such as KES)",
    8: "currency USD is not Kisumu Kibuye's currency KES",
    9: "unknown market 'atlantis'",
    10: "unit 'bunch' is not a weight or volume, and no catalog unit matches",
    11: "unknown kind 'bulk' (wholesale, retail or farm-gate)",
    12: "3 fields where the header has 7",
}


def test_malformed_file_is_reported_line_by_line_and_good_rows_kept(session) -> None:
    summary = import_prices(
        session, DATA / "malformed_prices.csv", "generic", source="import:test", policy=TRUSTED
    )
    assert summary.rows_read == 12
    assert dict(summary.rejected) == MALFORMED
    assert summary.imported == 2 and summary.saved
    assert _count(session, PriceObservation, PriceObservation.source == "import:test") == 2


def test_atomic_malformed_file_leaves_the_database_as_it_was(session) -> None:
    tables = (PriceObservation, Market, Commodity, Unit, CommodityAlias)
    before = [_count(session, model) for model in tables]
    summary = import_prices(
        session,
        DATA / "malformed_prices.csv",
        "generic",
        source="import:test",
        policy=TRUSTED,
        atomic=True,
        create_missing=True,
    )
    assert not summary.saved and summary.imported == 0 and summary.rejected_count == 9
    assert [_count(session, model) for model in tables] == before


def test_dry_run_counts_but_saves_nothing(session) -> None:
    before = _count(session, Market)
    summary = import_prices(
        session,
        DATA / "generic_prices.csv",
        "generic",
        source="import:test",
        create_missing=True,
        dry_run=True,
        policy=TRUSTED,
    )
    assert summary.imported == 6 and not summary.saved
    assert _count(session, Market) == before
    assert _count(session, PriceObservation, PriceObservation.source == "import:test") == 0


@pytest.mark.parametrize(
    ("name", "fmt", "message"),
    [
        (
            "wrong_columns.csv",
            "generic",
            "line 1: missing column(s) date, market, commodity, unit, currency, kind",
        ),
        ("generic_prices.csv", "wfp", "line 1: missing column(s) pricetype; the wfp format needs"),
        ("no_such_file.csv", "generic", "cannot read"),
    ],
)
def test_file_level_errors_are_one_clear_line(session, name, fmt, message) -> None:
    with pytest.raises(ImportFileError, match=None) as error:
        import_prices(session, DATA / name, fmt)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_file_that_is_not_utf8_is_one_clear_error(session, tmp_path) -> None:
    path = tmp_path / "latin1.csv"
    header = (DATA / "generic_prices.csv").read_text().splitlines()[0]
    path.write_bytes(f"{header}\n2024-03-04,Thiès,mil,kg,250,XOF,retail\n".encode("latin-1"))
    with pytest.raises(ImportFileError, match=r"^line \d+: latin1.csv is not UTF-8 text$"):
        import_prices(session, path, "generic")
    with pytest.raises(ImportFileError, match="is not UTF-8 CSV text"):
        check_file(path, "generic")


@needs_wfp
def test_real_wfp_file_maps_kenyan_names_and_quotes_maize_per_kg(session) -> None:
    summary = import_prices(session, WFP_FILE, "wfp", create_missing=True)
    assert summary.rows_read == 15995 and summary.duplicates == 0
    assert summary.imported + summary.rejected_count == 15995
    # Counted units (loaves, heads, bunches) have no weight to normalise to.
    assert set(summary.rejected_reasons) == {
        f"unit {unit!r} is not a weight or volume, and no catalog unit matches"
        for unit in ("Unit", "Head", "Bunch")
    }
    assert "Mombasa" in summary.created["markets"] and "Nakuru" not in summary.created["markets"]
    assert not {"Maize", "Maize (white)", "Beans (dry)", "Potatoes (Irish)"} & set(
        summary.created["commodities"]
    )
    maize = session.scalars(sa.select(Commodity).where(Commodity.code == "maize")).one()
    mombasa = _market(session, "mombasa")
    assert count_pending(session, "import:wfp") == summary.held
    approve_all(session, "import:wfp")
    day, per_kg = price_on_or_before(session, maize, mombasa, dt.date(2023, 12, 31))
    assert day >= dt.date(2021, 1, 1) and 15 < per_kg < 100
    quote = latest_quote(session, maize, mombasa, dt.date(2023, 12, 31))
    assert (
        quote is not None
        and quote.currency == "KES"
        and quote.amount == (per_kg * 90).quantize(decimal.Decimal("0.01"))
    )
    nakuru = _market(session, "nakuru")
    assert price_on_or_before(session, maize, nakuru, dt.date(2023, 12, 31)) is not None


def _subprocess(args: list[str], url: str) -> subprocess.CompletedProcess:
    """The real ``smsgw`` entry point in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "smsgw", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "DATABASE_URL": url},
    )


def _cli(args: list[str], url: str) -> Result:
    """The same command in this process (no interpreter start-up per call)."""
    return CliRunner().invoke(main, args, env={"DATABASE_URL": url})


@pytest.fixture()
def empty_database(tmp_path) -> Iterator[str]:
    """A migrated, empty SQLite database of its own (the CLI commits for real)."""
    with fresh_database(tmp_path, "sqlite", seed=False) as url:
        yield url


@needs_wfp
def test_cli_imports_the_wfp_file_twice_without_duplicates(empty_database) -> None:
    # Judged as of the file's start, no row is history: its outliers are held as new prices
    # would be (by default, rows older than the price maximum age are flagged, not held).
    command = ["import-prices", str(WFP_FILE), "--format", "wfp", "--create-missing", "--as-of", "2006-01-01"]
    first = _subprocess(command, empty_database)
    assert first.returncode == 0, first.stderr
    assert "15995 rows read" in first.stdout and "rejected 375" in first.stdout
    assert "line 6510: unit 'Unit' is not a weight or volume" in first.stdout
    imported = int(first.stdout.split("imported ")[1].split(":")[0])
    assert imported == 15995 - 375
    second = _cli(command, empty_database)
    assert second.exit_code == 0, second.output
    assert "imported 0:" in second.stdout and f"duplicates {imported}" in second.stdout
    listed = _cli(["prices", "pending", "--source", "import:wfp", "--limit", "2"], empty_database)
    first_id = int(listed.stdout.split()[0].lstrip("#"))
    assert "    held: " in listed.stdout and "recent approved per kg" in listed.stdout
    rejected = _cli(["prices", "reject", str(first_id), "--reason", "checked"], empty_database)
    assert rejected.stdout.strip() == f"rejected price {first_id}"
    again = _cli(["prices", "reject", str(first_id), "--reason", "again"], empty_database)
    assert again.exit_code == 1
    assert again.stderr.strip() == f"Error: price {first_id} is already rejected"
    approved = _cli(["prices", "approve", "--all", "--source", "import:wfp"], empty_database)
    assert approved.exit_code == 0 and approved.stdout.startswith("approved ")
    pending = _cli(["prices", "pending"], empty_database)
    assert pending.stdout.strip().endswith("0 held")
    db = Database(empty_database)
    with db.session() as session:
        assert _count(session, PriceObservation) == imported
        assert _count(session, PriceObservation, PriceObservation.status != "approved") == 1
    db.dispose()


def test_cli_atomic_import_of_a_malformed_file_fails_and_saves_nothing(empty_database) -> None:
    path = str(DATA / "malformed_prices.csv")
    args = ["--format", "generic", "--atomic", "--create-missing", "--country", "KE"]
    result = _cli(["import-prices", path, *args], empty_database)
    assert result.exit_code == 1
    assert "line 5: price -4500 is not above 0" in result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"Error: --atomic: \d+ rows rejected, nothing saved", last)
    db = Database(empty_database)
    with db.session() as session:
        assert _count(session, PriceObservation) == 0 and _count(session, Market) == 0
    db.dispose()


@pytest.mark.parametrize(
    "args",
    [["prices", "approve"], ["prices", "approve", "1", "--all"], ["prices", "correct", "1", "x"]],
)
def test_cli_review_usage_errors_are_one_line(empty_database, args) -> None:
    result = _cli(args, empty_database)
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1


def test_cli_wrong_columns_is_one_line(empty_database) -> None:
    result = _cli(
        ["import-prices", str(DATA / "wrong_columns.csv"), "--format", "generic"], empty_database
    )
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: line 1: missing column(s) date, market, commodity, unit, currency, kind;"
        " the generic format needs date, market, commodity, unit, price, currency, kind"
    )
