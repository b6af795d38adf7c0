"""Importing other countries' history: market identity with its country, the country read
from the file, forecast rows, and varieties mapped the same whatever the order of the rows.

The real files of ../shared/data (see its README) are used where they carry the case: the
Kenyan WFP series for varieties, the Agmarknet mandi series (INR, a currency of India and
Bhutan) for a country that only the file can tell.
"""
from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so
from click.testing import CliRunner

from smsgw.cli import main
from smsgw.db import Database
from smsgw.models import Commodity, CommodityAlias, Market, PriceObservation, Unit
from smsgw.services.price_checks import Policy
from smsgw.services.price_files import ImportFileError
from smsgw.services.price_import import import_prices
from tests.support.databases import fresh_database
from tests.support.dispersion import SHARED_DATA
from tests.support.prerequisites import require

SOURCE = "import:test"
TRUSTED = Policy(trusted_sources=frozenset({SOURCE}))
KENYA = SHARED_DATA / "kenya_wfp_food_prices_ken_2006_2023.csv"
MANDIS = SHARED_DATA / "india_agmarknet_malabar_daily_2021_2026.csv"
GENERIC = ["date", "market", "commodity", "unit", "price", "currency", "kind"]
WFP = ["date", "admin1", "admin2", "market", "latitude", "longitude", "category", "commodity", "unit",
       "priceflag", "pricetype", "currency", "price", "usdprice"]


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


def _import(session, path: Path, fmt: str = "generic", **options):
    return import_prices(session, path, fmt, source=SOURCE, policy=TRUSTED, create_missing=True, **options)


def _count(session, model) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(model))


def _markets(session, name: str) -> dict[str, str]:
    """Country -> code of the markets called ``name``."""
    rows = session.execute(sa.select(Market.country, Market.code).where(Market.name == name))
    return dict(rows.all())


# ------------------------------------------------------------------ market identity


XOF_ROWS = [
    ["2024-03-04", "Kaolack", "mil", "kg", "250", "XOF", "retail", "SN"],
    ["2024-03-04", "Kaolack", "mil", "kg", "300", "XOF", "retail", "ML"],
    ["2024-03-04", "Marché central", "mil", "kg", "260", "XOF", "retail", "Senegal"],
    ["2024-03-04", "Marché central", "mil", "kg", "270", "XOF", "retail", "MLI"],
]


def test_a_market_name_in_two_countries_is_two_markets(session, tmp_path) -> None:
    path = _write(tmp_path / "xof.csv", [*GENERIC, "country"], XOF_ROWS)
    summary = _import(session, path)
    assert (summary.imported, summary.rejected_count, summary.duplicates) == (4, 0, 0), summary.rejected
    assert summary.created["markets"] == ["Kaolack", "Marché central", "Marché central"]
    # The demo's Kaolack (code kaolack) is Senegal's; Mali's is a market of its own.
    assert _markets(session, "Kaolack") == {"ML": "kaolack-ml"}
    assert set(_markets(session, "Marché central")) == {"SN", "ML"}
    stored = session.execute(
        sa.select(Market.country, PriceObservation.amount)
        .join(Market, Market.id == PriceObservation.market_id)
        .where(PriceObservation.source == SOURCE)
    ).all()
    assert sorted(stored) == sorted([("SN", 250), ("ML", 300), ("SN", 260), ("ML", 270)])
    again = _import(session, path)
    assert (again.imported, again.duplicates, again.created["markets"]) == (0, 4, [])


def test_a_row_imported_before_keys_held_the_country_is_still_a_duplicate(session, tmp_path) -> None:
    path = _write(tmp_path / "xof.csv", [*GENERIC, "country"], XOF_ROWS[:1])
    assert _import(session, path).imported == 1
    # As an earlier release stored it: no country in the key.
    session.execute(
        sa.update(PriceObservation).where(PriceObservation.source == SOURCE)
        .values(source_ref=sa.func.replace(PriceObservation.source_ref, "|XOF|SN", "|XOF"))
    )
    session.commit()
    again = _import(session, path)
    assert (again.imported, again.duplicates) == (0, 1)


def test_without_a_country_a_shared_name_is_told_apart_by_currency_or_rejected(session, tmp_path) -> None:
    _import(session, _write(tmp_path / "xof.csv", [*GENERIC, "country"], XOF_ROWS))
    rows = [["2024-03-05", "Marché central", "mil", "kg", "265", "XOF", "retail"],
            ["2024-03-05", "kaolack", "mil", "kg", "255", "XOF", "retail"],
            ["2024-03-05", "nakuru", "maize", "kg", "50", "KES", "retail"]]
    summary = _import(session, _write(tmp_path / "plain.csv", GENERIC, rows))
    assert dict(summary.rejected) == {
        2: "market 'Marché central' is in several countries (ML, SN): give a country column or --country",
        3: "market 'kaolack' is in several countries (ML, SN): give a country column or --country",
    }
    assert summary.imported == 1


def test_a_country_the_file_gives_scopes_the_market_name(session, tmp_path) -> None:
    rows = [["2024-03-05", "nakuru", "maize", "kg", "50", "KES", "retail", "UG"],
            ["2024-03-05", "nakuru", "maize", "kg", "50", "KES", "retail", "KEN"],
            ["2024-03-05", "nakuru", "maize", "kg", "50", "KES", "retail", "Atlantis"]]
    path = _write(tmp_path / "countries.csv", [*GENERIC, "country"], rows)
    summary = import_prices(session, path, "generic", source=SOURCE, policy=TRUSTED)
    assert dict(summary.rejected) == {
        2: "unknown market 'nakuru' in UG (only in KE)",
        4: "unknown country 'Atlantis' (an ISO 3166 code such as SN or SEN, or a country's name)",
    }
    created = _import(session, path)
    assert created.rejected[0] == (2, "cannot create market 'nakuru' in UG: KES is KE's currency")


# ------------------------------------------------------------------ the country from the file


def test_a_shared_currency_with_nothing_to_tell_the_country_refuses_the_file_in_one_line(session, tmp_path) -> None:
    rows = [["2024-03-04", "kaolack", "mil", "kg", "250", "XOF", "retail"],
            ["2024-03-04", "Ziguinchor", "mil", "kg", "240", "XOF", "retail"]]
    before = [_count(session, model) for model in (Market, PriceObservation)]
    with pytest.raises(ImportFileError) as error:
        _import(session, _write(tmp_path / "prices.csv", GENERIC, rows))
    assert str(error.value) == (
        "line 3: no country for new market 'Ziguinchor': XOF is used in 8 countries"
        " (BF, BJ, CI, GW, ML, NE, SN, TG); pass --country (or add a country column)"
    )
    assert [_count(session, model) for model in (Market, PriceObservation)] == before
    # Known markets need no country; without --create-missing nothing is made, so nothing is asked.
    assert import_prices(session, tmp_path / "prices.csv", "generic", source=SOURCE, policy=TRUSTED).imported == 1
    flagged = _import(session, tmp_path / "prices.csv", country="sen")
    assert (flagged.imported, _markets(session, "Ziguinchor")) == (1, {"SN": "ziguinchor"})


def _sahel(market: str, *country: str) -> list[str]:
    """A WFP row of millet in ``market`` (XOF, a currency of eight countries), then ``country``."""
    return ["2024-03-15", "", "", market, "", "", "cereals", "Millet", "KG", "actual", "Retail", "XOF", "310", "",
            *country]


def test_the_country_comes_from_the_file_name_or_a_country_column(session, tmp_path) -> None:
    named = _import(session, _write(tmp_path / "wfp_food_prices_mli.csv", WFP, [_sahel("Mopti")]), "wfp")
    assert (named.country, named.imported, _markets(session, "Mopti")) == ("ML", 1, {"ML": "mopti"})
    # HDX's global file has a countryiso3 column.
    columned = _import(session, _write(tmp_path / "g.csv", [*WFP, "countryiso3"], [_sahel("Niamey", "NER")]), "wfp")
    assert (columned.country, columned.imported, _markets(session, "Niamey")) == ("", 1, {"NE": "niamey"})
    # Any column its HXL tag calls #country.
    tags = [f"#{name}" for name in WFP] + ["#country+code"]
    path = _write(tmp_path / "tagged.csv", [*WFP, "iso"], [tags, _sahel("Bobo-Dioulasso", "BFA")])
    tagged = _import(session, path, "wfp")
    assert (tagged.imported, _markets(session, "Bobo-Dioulasso")) == (1, {"BF": "bobo-dioulasso"})


def test_an_empty_country_cell_is_rejected_with_its_own_reason(session, tmp_path) -> None:
    rows = [["2024-03-04", "Ziguinchor", "mil", "kg", "240", "XOF", "retail", ""],
            ["2024-03-04", "Sikasso", "mil", "kg", "240", "XOF", "retail", "ML"]]
    summary = _import(session, _write(tmp_path / "prices.csv", [*GENERIC, "country"], rows))
    assert summary.imported == 1 and summary.rejected == [(2, (
        "no country for new market 'Ziguinchor': XOF is used in 8 countries (BF, BJ, CI, GW, ML, NE, SN, TG);"
        " fill its country cell or --country"
    ))]


def _mandi_rows(count: int) -> Iterator[list[str]]:
    """The first ``count`` rows of the Agmarknet file, as generic rows: the variety in parentheses."""
    with MANDIS.open(newline="", encoding="utf-8") as handle:
        for raw in itertools.islice(csv.DictReader(handle), count):
            yield [raw["date"], raw["market"], f"{raw['commodity_slug']} ({raw['variety']})", "100 kg",
                   raw["modal_price"], "INR", "wholesale"]


def test_real_mandi_prices_in_a_currency_of_two_countries(session, tmp_path) -> None:
    require(MANDIS.exists(), "shared/data is not beside the repository")
    rows = list(_mandi_rows(400))
    with pytest.raises(ImportFileError, match=r"^line 2: no country for new market '.+': INR is used in 2 countries "
                                              r"\(BT, IN\); pass --country \(or add a country column\)$"):
        _import(session, _write(tmp_path / "mandis.csv", GENERIC, rows))
    summary = _import(session, _write(tmp_path / "india_agmarknet_sample.csv", GENERIC, rows))
    assert summary.country == "IN" and summary.rejected_count == 0
    assert summary.imported + summary.duplicates == 400 and summary.imported > 300
    countries = session.scalars(
        sa.select(Market.country).join(PriceObservation, PriceObservation.market_id == Market.id)
        .where(PriceObservation.source == SOURCE).distinct()
    ).all()
    assert countries == ["IN"]
    # Arecanut is sold by variety (Rashi, Chali, Bette, ...), each at its own price: with no plain
    # "arecanut" in the file, each variety stays a commodity of its own, never one mixed series.
    names = set(session.scalars(sa.select(CommodityAlias.alias).where(CommodityAlias.alias.like("arecanut (%"))))
    assert len(names) > 1
    ids = {session.scalar(sa.select(CommodityAlias.commodity_id).where(CommodityAlias.alias == name)) for name in names}
    assert len(ids) == len(names)
    # The same rows with a country column (HDX's countryiso3) need neither the name nor --country.
    tagged = _import(session, _write(tmp_path / "b.csv", [*GENERIC, "countryiso3"], [[*r, "IND"] for r in rows]))
    assert (tagged.imported, tagged.duplicates) == (0, summary.imported + summary.duplicates)


# ------------------------------------------------------------------ forecasts


def _wfp_row(day: str, flag: str, kind: str, price: str) -> list[str]:
    return [day, "Coast", "Mombasa", "Mombasa", "-4.05", "39.67", "cereals", "Maize", "KG", flag, kind, "KES",
            price, ""]


FORECASTS = [
    _wfp_row("2023-08-15", "actual", "Wholesale", "40"),
    _wfp_row("2023-09-15", "forecast", "Wholesale", "0"),
    _wfp_row("2099-01-15", "forecast", "Retail", "0"),  # a forecast is often dated ahead
    _wfp_row("2023-09-15", "aggregate", "Forecast", "0"),
    _wfp_row("2023-10-15", "actual,forecast", "Retail", "52"),
    _wfp_row("2023-08-15", "actual", "Retail", "0"),
]


def test_forecast_rows_are_counted_as_forecasts_not_as_bad_prices(session, tmp_path) -> None:
    path = _write(tmp_path / "wfp.csv", WFP, FORECASTS)
    summary = _import(session, path, "wfp")
    assert (summary.rows_read, summary.imported, summary.forecasts) == (6, 1, 4)
    assert summary.rejected == [(7, "price 0 is not above 0")]  # a 0 that is not a forecast is still a bad price
    assert summary.imported + summary.duplicates + summary.forecasts + summary.rejected_count == summary.rows_read
    # Forecasts are expected in these files: they never make an all-or-nothing import fail.
    atomic = _import(session, _write(tmp_path / "w2.csv", WFP, FORECASTS[:5]), "wfp", atomic=True)
    assert atomic.saved and (atomic.duplicates, atomic.forecasts) == (1, 4)


# ------------------------------------------------------------------ the CLI


@pytest.fixture()
def empty_database(tmp_path) -> Iterator[str]:
    """A migrated, empty database of its own (the CLI commits for real)."""
    with fresh_database(tmp_path, "sqlite", seed=False) as url:
        yield url


def _errors(result) -> list[str]:
    """The error lines a command printed (stderr also holds the progress bar's label)."""
    return [line for line in result.stderr.splitlines() if line.startswith("Error:")]


def test_cli_says_in_one_line_to_pass_the_country_and_reports_forecasts(empty_database, tmp_path) -> None:
    forecast = _sahel("Mopti")
    forecast[0], forecast[9], forecast[12] = "2024-04-15", "forecast", "0"
    path = str(_write(tmp_path / "sahel.csv", WFP, [_sahel("Mopti"), forecast]))
    command = ["import-prices", path, "--format", "wfp", "--create-missing"]
    refused = CliRunner().invoke(main, command, env={"DATABASE_URL": empty_database})
    assert refused.exit_code == 1 and refused.stdout == ""
    assert _errors(refused) == [(
        "Error: line 2: no country for new market 'Mopti': XOF is used in 8 countries"
        " (BF, BJ, CI, GW, ML, NE, SN, TG); pass --country (or add a country column)"
    )]
    bad = CliRunner().invoke(main, [*command, "--country", "XX"], env={"DATABASE_URL": empty_database})
    assert bad.exit_code == 1 and len(_errors(bad)) == 1
    assert _errors(bad)[0].startswith("Error: --country: unknown country 'XX'")
    done = CliRunner().invoke(main, [*command, "--country", "Mali"], env={"DATABASE_URL": empty_database})
    assert done.exit_code == 0, done.output
    assert "imported 1:" in done.stdout and "forecasts 1 (not observed prices: not imported)" in done.stdout
    db = Database(empty_database)
    with db.session() as session:
        markets = session.execute(sa.select(Market.name, Market.country, Market.currency)).all()
        assert markets == [("Mopti", "ML", "XOF")]
    db.dispose()


# ------------------------------------------------------------------ varieties and row order


def _kenyan_rows(crops: set[str]) -> list[list[str]]:
    """The Kenyan WFP rows since 2015 of ``crops`` (any variety), as in the file."""
    with KENYA.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        at = {name: header.index(name) for name in ("date", "commodity")}
        return [row for row in reader if not row[0].startswith("#") and row[at["date"]] >= "2015"
                and row[at["commodity"]].split(" (")[0] in crops]


def _stored(session) -> dict[str, object]:
    """What an import left, by codes and names (never ids, which a rolled-back run may not reuse)."""
    unit = so.aliased(Unit)
    observations = session.execute(
        sa.select(PriceObservation.source_ref, Commodity.code, Market.code, Market.country, Unit.code,
                  PriceObservation.amount, PriceObservation.kind, PriceObservation.status)
        .join(Commodity, Commodity.id == PriceObservation.commodity_id)
        .join(Market, Market.id == PriceObservation.market_id)
        .join(Unit, Unit.id == PriceObservation.unit_id)
        .where(PriceObservation.source == SOURCE)
    ).all()
    commodities = session.execute(
        sa.select(Commodity.code, Commodity.names, Commodity.short_names, unit.code)
        .join(unit, unit.id == Commodity.default_unit_id)
    ).all()
    aliases = session.execute(
        sa.select(CommodityAlias.alias, Commodity.code).join(Commodity, Commodity.id == CommodityAlias.commodity_id)
    ).all()
    return {
        "observations": sorted(map(tuple, observations)),
        "commodities": sorted((code, sorted(n.items()), sorted(s.items()), u) for code, n, s, u in commodities),
        "aliases": sorted(map(tuple, aliases)),
        "markets": sorted(map(tuple, session.execute(sa.select(Market.code, Market.name, Market.country)).all())),
        "units": sorted(map(tuple, session.execute(sa.select(Unit.code, Unit.base, Unit.factor)).all())),
    }


def _import_rolled_back(db, connection, path: Path) -> dict[str, object]:
    """Import ``path``, note what is stored, and undo it all (the next order starts from the same catalog)."""
    savepoint = connection.begin_nested()
    session = db.sessionmaker()
    try:
        summary = _import(session, path, "wfp")
        assert summary.rejected_count == 0, summary.rejected[:5]
        return {**_stored(session), "created": sorted(summary.created["commodities"])}
    finally:
        session.close()
        savepoint.rollback()


def test_varieties_map_the_same_whatever_the_order_of_the_rows(db, connection, tmp_path) -> None:
    require(KENYA.exists(), "shared/data is not beside the repository")
    # Crops the demo catalog lacks: created by the import, from the file's own names.
    rows = _kenyan_rows({"Sorghum", "Fuel", "Milk"})
    by_name = sorted(rows, key=lambda row: (row[WFP.index("commodity")], row[0], row[3], row[8], row[10]))
    plain_first = _write(tmp_path / "a.csv", WFP, by_name)  # "Sorghum" before "Sorghum (red)"
    varieties_first = _write(tmp_path / "b.csv", WFP, by_name[::-1])
    first = _import_rolled_back(db, connection, plain_first)
    second = _import_rolled_back(db, connection, varieties_first)
    assert first == second
    created = first["created"]
    # "Sorghum (red)" and "Sorghum (white)" are sorghum, as the file also names plain "Sorghum";
    # with no plain "Fuel" or "Milk", diesel is not kerosene and camel milk is not UHT milk.
    assert "Sorghum" in created and not any(name.startswith("Sorghum (") for name in created)
    assert {"Fuel (diesel)", "Fuel (kerosene)", "Milk (UHT)", "Milk (camel, fresh)"} <= set(created)
    aliases = dict(first["aliases"])
    assert aliases["sorghum (red)"] == aliases["sorghum (white)"] == aliases["sorghum"] == "sorghum"
    assert len(first["observations"]) == len(rows)


def test_a_nul_character_in_a_cell_never_reaches_the_database(session, tmp_path) -> None:
    """PostgreSQL text cannot hold NUL: a market made from such a row is stored without it."""
    row = _wfp_row("2023-08-15", "actual", "Wholesale", "40")
    row[1], row[3] = "Co\x00ast", "Kili\x00fi"
    summary = _import(session, _write(tmp_path / "wfp.csv", WFP, [row]), "wfp")
    assert (summary.imported, summary.created["markets"]) == (1, ["Kilifi"])
    assert session.execute(sa.select(Market.region).where(Market.name == "Kilifi")).scalar_one() == "Coast"
