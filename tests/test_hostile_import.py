"""Hostile price files: whatever a CSV holds, the import never fails with a traceback.

Each line is imported, counted as a duplicate or a forecast, or rejected with a one-line
reason; a file that cannot be read at all is one clear ``ImportFileError``; nothing else escapes.

The files mix three kinds of line: good lines (the import must take them), lines that are
good but for one cell (or too few cells), each with the reason the operator must read,
written out here by hand, and lines of junk (any one-line outcome). Some files lose a
required column or carry bytes that are not UTF-8: those, and only those, are refused whole.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from smsgw.models import PriceObservation
from smsgw.services.catalog_matcher import currency_countries
from smsgw.services.price_checks import Policy
from smsgw.services.price_files import GENERIC_COLUMNS, ImportFileError
from smsgw.services.price_import import import_prices

TRUSTED = Policy(trusted_sources=frozenset({"import:hostile"}))
junk = st.text(max_size=40)
CELLS = {
    "date": ["2026-11-20", "2026-11-31", "20/11/2026", "2999-01-01", ""],
    "market": ["nakuru", "Nakuru Wakulima", "NAKURU", "kaolack", "Atlantis", "'; DROP TABLE market;--"],
    "commodity": ["maize", "Maize (white)", "mahindi", "mil", "unobtainium", "<script>x</script>"],
    "unit": ["bag90", "kg", "90 KG", "13 kg", "500 ml", "Bunch", "0 kg", "1e9 t"],
    "price": ["4300", "0", "-4", "0.001", "1e400", "NaN", "Infinity", "4,300", "９９"],
    "currency": ["KES", "XOF", "kes", "ZZZ", ""],
    "kind": ["wholesale", "retail", "farm-gate", "Wholesale ", "barter"],
}
OK = "ok"  # the line must be imported (or be a duplicate of one already imported)
# A good line of the demo catalog (Kenya, KES); the dates are in the past.
good = st.fixed_dictionaries({
    "date": st.sampled_from(["2026-11-18", "2026-11-19", "2026-11-20"]),
    "market": st.sampled_from(["nakuru", "eldoret"]),
    "commodity": st.sampled_from(["maize", "beans"]), "unit": st.sampled_from(["bag90", "kg"]),
    "price": st.sampled_from(["4300", "45.5", "4200.004"]), "currency": st.just("KES"), "kind": st.just("wholesale"),
})
# A good line with these cells changed, and what the rejection must say (every fragment).
BAD_GENERIC = [
    ({"date": "2026-11-31"}, ("bad date '2026-11-31' (expected YYYY-MM-DD)",)),
    ({"date": "20/11/2026"}, ("bad date '20/11/2026'",)),
    ({"date": "2999-01-01"}, ("date 2999-01-01 is in the future",)),
    ({"price": "0"}, ("price 0 is not above 0",)),
    ({"price": "-4"}, ("price -4 is not above 0",)),
    ({"price": "0.001"}, ("price 0.001 rounds to 0",)),
    ({"price": "1e400"}, ("price 1e400 is too large",)),
    ({"price": "NaN"}, ("price 'NaN' is not a number",)),
    ({"price": "Infinity"}, ("price 'Infinity' is not a number",)),
    ({"price": "4,300"}, ("price '4,300' is not a number",)),
    ({"price": ""}, ("price '' is not a number",)),
    ({"kind": "barter"}, ("unknown kind 'barter'",)),
    ({"currency": "ZZZ"}, ("unknown currency 'ZZZ'",)),
    ({"currency": ""}, ("unknown currency ''",)),
    ({"currency": "XOF", "market": "nakuru"}, ("currency XOF is not Nakuru Wakulima's currency KES",)),
    ({"market": "Atlantis"}, ("unknown market 'Atlantis'",)),
    ({"market": ""}, ("the market is empty",)),
    ({"commodity": "unobtainium"}, ("unknown commodity 'unobtainium'",)),
    ({"commodity": ""}, ("the commodity is empty",)),
    ({"unit": "Bunch"}, ("unit 'Bunch' is not a weight or volume",)),
    ({"unit": "13 kg"}, ("unit '13 kg' (13 kg) is not in the catalog",)),
    ({"unit": ""}, ("the unit is empty",)),
]
odd = st.fixed_dictionaries({name: st.one_of(st.sampled_from(CELLS[name]), junk) for name in GENERIC_COLUMNS})
mixed = st.builds(lambda a, b, keep: {k: (a if k in keep else b)[k] for k in a},
                  good, odd, st.sets(st.sampled_from(GENERIC_COLUMNS), min_size=5))


def _short(columns: list[str], line: dict[str, str], keep: int) -> tuple[list[str], tuple[str, ...]]:
    return [line[name] for name in columns][:keep], (f"{keep} fields where the header has {len(columns)}",)


def _generic_lines(columns: list[str]) -> st.SearchStrategy[tuple[list[str], object]]:
    """One line in ``columns``' order, with what the import must do with it."""
    cells = lambda line: [line[name] for name in columns]
    return st.one_of(
        good.map(lambda line: (cells(line), OK)),
        st.tuples(good, st.sampled_from(BAD_GENERIC)).map(lambda t: (cells({**t[0], **t[1][0]}), t[1][1])),
        st.tuples(good, st.integers(1, len(columns) - 1)).map(lambda t: _short(columns, *t)),
        st.one_of(odd, mixed).map(lambda line: (cells(line), None)),
    )


@st.composite
def generic_files(draw) -> tuple[list[str], list[tuple[list[str], object]], str | None, bool]:
    """(header, lines with their outcome, a required column left out or None, bytes that are not UTF-8)."""
    columns = draw(st.permutations(GENERIC_COLUMNS))
    lines = draw(st.lists(_generic_lines(columns), min_size=1, max_size=6))
    dropped = draw(st.one_of(st.none(), st.none(), st.none(), st.sampled_from(GENERIC_COLUMNS)))
    header = [draw(st.sampled_from([name, name.upper(), name.title()])) for name in columns if name != dropped]
    return header, lines, dropped, draw(st.sampled_from([False, False, False, True]))


def _write(
    path: Path, header: list[str], lines: list[list[str]], *, hxl: bool = False, broken: bool = False
) -> list[int]:
    """Write the file; the line number each of ``lines`` ends on (what the reader reports)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header + (["\udcff"] if broken else []))  # a lone surrogate: bytes no UTF-8 decoder takes
    if hxl:
        writer.writerow([f"#{name}" for name in header])
    writer.writerows(lines)
    path.write_bytes(out.getvalue().encode("utf-8", "surrogateescape" if broken else "surrogatepass"))
    if broken:
        return []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        ends = [reader.line_num for _ in reader]
    return ends[2:] if hxl else ends[1:]


def _counted(cells: list[str]) -> bool:
    """Lines the importer reads (not blank, not an HXL ``#`` line)."""
    return any(cell.strip() for cell in cells) and not cells[0].lstrip().startswith("#")


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _stored_refs(session, source: str) -> set[str]:
    return set(session.scalars(sa.select(PriceObservation.source_ref).where(PriceObservation.source == source)))


def _check_summary(
    session, summary, lines: list[tuple[list[str], object]], ends: list[int], refs: list[str | None], before: int
) -> None:
    """Every good line went in, every bad line was rejected with its reason, and the counts add up."""
    rejected = dict(summary.rejected)
    assert len(rejected) == len(summary.rejected) == summary.rejected_count  # one reason per line, each kept
    assert all(reason and "\n" not in reason for reason in rejected.values())
    stored = _stored_refs(session, "import:hostile")
    for (cells, expected), end, ref in zip(lines, ends, refs, strict=True):
        if expected == OK:
            assert end not in rejected, (cells, rejected.get(end))
            assert ref in stored, (cells, ref)
        elif expected is not None:
            assert end in rejected, (cells, expected)
            assert all(fragment in rejected[end] for fragment in expected), (cells, rejected[end], expected)
    assert summary.rows_read == sum(_counted(cells) for cells, _ in lines)
    assert summary.imported + summary.duplicates + summary.forecasts + summary.rejected_count == summary.rows_read
    assert summary.rejected_count >= sum(expected not in (OK, None) for _, expected in lines)
    after = session.scalar(sa.select(sa.func.count()).select_from(PriceObservation))
    assert after - before == summary.imported
    assert session.scalar(
        sa.select(sa.func.count()).select_from(PriceObservation)
        .where(PriceObservation.source == "import:hostile", PriceObservation.price_per_base <= 0)
    ) == 0


def _refused(
    session, path: Path, run, dropped: str | None, broken: bool, required: tuple[str, ...], fmt: str, before: int
) -> bool:
    """For a file that must be refused whole: check the one-line reason; True if it was such a file."""
    if not (broken or dropped):
        return False
    try:
        summary = run()
    except ImportFileError as error:
        message = str(error)
        assert "\n" not in message
        if broken:
            assert message == f"line 1: {path.name} is not UTF-8 text", message
        else:
            needs = ", ".join(required)
            assert message == f"line 1: missing column(s) {dropped}; the {fmt} format needs {needs}", message
        assert session.scalar(sa.select(sa.func.count()).select_from(PriceObservation)) == before
        return True
    what = "of bytes that are not UTF-8" if broken else f"without {dropped}"
    raise AssertionError(f"a file {what} was imported: {summary}")


HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]


@settings(max_examples=150, deadline=None, suppress_health_check=HEALTH)
@given(file=generic_files())
def test_any_generic_file_is_imported_line_by_line_or_refused_whole(session, tmp_path, file) -> None:
    header, lines, dropped, broken = file
    path = tmp_path / "hostile.csv"
    ends = _write(path, header, [cells for cells, _ in lines], broken=broken)
    before = session.scalar(sa.select(sa.func.count()).select_from(PriceObservation))
    run = lambda: import_prices(session, path, "generic", source="import:hostile", policy=TRUSTED)
    if _refused(session, path, run, dropped, broken, GENERIC_COLUMNS, "generic", before):
        event("refused whole")
        return
    summary = run()  # a readable file with every column is never refused whole
    event("some line imported" if summary.imported else "no line imported")
    columns = [name.lower() for name in header]
    refs = []
    for cells, expected in lines:
        line = dict(zip(columns, cells, strict=False))
        refs.append("|".join(_norm(line[name]) for name in ("date", "market", "commodity", "unit", "kind")) + "|KES"
                    if expected == OK else None)
    _check_summary(session, summary, lines, ends, refs, before)


GOOD_LINE = {"date": "2026-11-20", "market": "nakuru", "commodity": "maize", "unit": "bag90", "price": "4300",
             "currency": "KES", "kind": "wholesale"}


@pytest.mark.parametrize(("overrides", "fragments"), BAD_GENERIC, ids=lambda value: str(value)[:40])
def test_each_bad_generic_cell_is_rejected_with_its_reason(session, tmp_path, overrides, fragments) -> None:
    """Every reason of BAD_GENERIC, once each (the property test above draws them at random)."""
    path = tmp_path / "one.csv"
    columns = list(GENERIC_COLUMNS)
    bad = {**GOOD_LINE, **overrides}
    _write(path, columns, [[GOOD_LINE[name] for name in columns], [bad[name] for name in columns]])
    summary = import_prices(session, path, "generic", source="import:hostile", policy=TRUSTED)
    assert (summary.rows_read, summary.imported + summary.duplicates, summary.rejected_count) == (2, 1, 1)
    ((line, reason),) = summary.rejected
    assert line == 3 and all(fragment in reason for fragment in fragments), reason


WFP_HEADER = ["date", "admin1", "admin2", "market", "latitude", "longitude", "category", "commodity", "unit",
              "priceflag", "pricetype", "currency", "price", "usdprice"]
coordinate = st.one_of(st.sampled_from(["-0.28", "35.07", "1e400", "NaN", "-inf", "181", ""]), junk)
FREE = {name: junk for name in ("admin1", "admin2", "category", "usdprice")}
# A forecast is counted, never imported: a good line's flag is anything else.
not_forecast = junk.filter(lambda flag: "forecast" not in flag.lower())
# A good WFP line: Kenyan markets (a new one is created from its currency), crops the catalog
# knows under WFP's names, weights, and any coordinates (a wrong one is left out, not fatal).
wfp_good = st.fixed_dictionaries({
    **FREE, "latitude": coordinate, "longitude": coordinate, "priceflag": not_forecast,
    "date": st.sampled_from(["2023-08-15", "2023-07-15"]),
    "market": st.sampled_from(["Nakuru", "Eldoret", "Garissa town"]),
    "commodity": st.sampled_from(["Maize", "Maize (white, dry)", "Beans (dry)"]),
    "unit": st.sampled_from(["KG", "90 KG"]),
    "pricetype": st.sampled_from(["Wholesale", "Retail"]),
    "currency": st.just("KES"),
    "price": st.sampled_from(["4300", "45.5"]),
})
BAD_WFP = [
    ({"date": "2023-02-29"}, ("bad date '2023-02-29' (expected YYYY-MM-DD)",)),
    ({"date": "15/08/2023"}, ("bad date '15/08/2023'",)),
    ({"price": "0"}, ("price 0 is not above 0",)),
    ({"price": "0.001"}, ("price 0.001 rounds to 0",)),
    ({"price": "1e400"}, ("price 1e400 is too large",)),
    ({"price": "NaN"}, ("price 'NaN' is not a number",)),
    ({"price": "4,300"}, ("price '4,300' is not a number",)),
    ({"pricetype": "Barter"}, ("unknown kind 'Barter'",)),
    ({"pricetype": ""}, ("unknown kind ''",)),
    ({"currency": "ZZZ"}, ("unknown currency 'ZZZ'",)),
    ({"currency": "XOF", "market": "Nakuru"}, ("currency XOF is not Nakuru Wakulima's currency KES",)),
    ({"market": ""}, ("the market is empty",)),
    ({"commodity": ""}, ("the commodity is empty",)),
    ({"unit": "Bunch"}, ("unit 'Bunch' is not a weight or volume",)),
    ({"unit": "Unit"}, ("unit 'Unit' is not a weight or volume",)),
    ({"unit": ""}, ("the unit is empty",)),
]
wfp_row = st.fixed_dictionaries({
    "date": st.one_of(st.sampled_from(["2023-08-15", "2023-02-29"]), junk), "admin1": junk, "admin2": junk,
    "market": st.one_of(st.sampled_from(["Nakuru", "Mombasa", "Garissa town"]), junk),
    "latitude": coordinate, "longitude": coordinate, "category": junk,
    "commodity": st.one_of(st.sampled_from(["Maize", "Maize (white, dry)", "Beans (dry)"]), junk),
    "unit": st.one_of(st.sampled_from(["KG", "90 KG", "Unit", "Bunch"]), junk), "priceflag": junk,
    "pricetype": st.one_of(st.sampled_from(["Wholesale", "Retail"]), junk),
    "currency": st.one_of(st.just("KES"), junk), "price": st.one_of(st.sampled_from(CELLS["price"]), junk),
    "usdprice": junk,
})


def _wfp_cells(line: dict[str, str]) -> list[str]:
    return [line[name] for name in WFP_HEADER]


wfp_line = st.one_of(
    wfp_good.map(lambda line: (_wfp_cells(line), OK)),
    st.tuples(wfp_good, st.sampled_from(BAD_WFP)).map(lambda t: (_wfp_cells({**t[0], **t[1][0]}), t[1][1])),
    wfp_row.map(lambda line: (_wfp_cells(line), None)),
)
WFP_REQUIRED = ("date", "market", "commodity", "unit", "pricetype", "currency", "price")


def _shared_currency(lines: list[tuple[list[str], object]]) -> bool:
    """A line in a currency of several countries (XOF): a new market there needs a country the file lacks."""
    at = WFP_HEADER.index("currency")
    return any(len(currency_countries().get(cells[at].strip().upper(), ())) > 1 for cells, _ in lines)


@settings(max_examples=100, deadline=None, suppress_health_check=HEALTH)
@given(lines=st.lists(wfp_line, min_size=1, max_size=6),
       dropped=st.one_of(st.none(), st.none(), st.none(), st.sampled_from(WFP_REQUIRED)),
       broken=st.sampled_from([False, False, False, True]))
def test_any_wfp_file_creating_markets_never_fails(session, tmp_path, lines, dropped, broken) -> None:
    header = [name for name in WFP_HEADER if name != dropped]
    path = tmp_path / "wfp.csv"
    ends = _write(path, header, [cells for cells, _ in lines], hxl=True, broken=broken)
    before = session.scalar(sa.select(sa.func.count()).select_from(PriceObservation))
    run = lambda: import_prices(session, path, "wfp", source="import:hostile", policy=TRUSTED, create_missing=True)
    if _refused(session, path, run, dropped, broken, WFP_REQUIRED, "wfp", before):
        event("refused whole")
        return
    try:
        summary = run()
    except ImportFileError as error:  # one line, before any row: "no country for new market ..."
        assert _shared_currency(lines) and "pass --country" in str(error) and "\n" not in str(error), str(error)
        assert session.scalar(sa.select(sa.func.count()).select_from(PriceObservation)) == before
        event("refused whole: no country")
        return
    event("some line imported" if summary.imported else "no line imported")
    refs = []
    for cells, expected in lines:
        line = dict(zip(WFP_HEADER, cells, strict=True))
        key = [_norm(line[name]) for name in ("date", "market", "commodity", "unit", "pricetype")] + ["KES"]
        refs.append("|".join(key) if expected == OK else None)
    _check_summary(session, summary, lines, ends, refs, before)


GOOD_WFP = {**dict.fromkeys(WFP_HEADER, ""), "date": "2023-08-15", "market": "Nakuru", "commodity": "Maize",
            "unit": "90 KG", "pricetype": "Wholesale", "currency": "KES", "price": "4300"}


@pytest.mark.parametrize(("overrides", "fragments"), BAD_WFP, ids=lambda value: str(value)[:40])
def test_each_bad_wfp_cell_is_rejected_with_its_reason(session, tmp_path, overrides, fragments) -> None:
    """Every reason of BAD_WFP, once each."""
    path = tmp_path / "one.csv"
    _write(path, WFP_HEADER, [_wfp_cells(GOOD_WFP), _wfp_cells({**GOOD_WFP, **overrides})], hxl=True)
    summary = import_prices(session, path, "wfp", source="import:hostile", policy=TRUSTED, create_missing=True)
    assert (summary.rows_read, summary.imported + summary.duplicates, summary.rejected_count) == (2, 1, 1)
    ((line, reason),) = summary.rejected
    assert line == 4 and all(fragment in reason for fragment in fragments), reason
