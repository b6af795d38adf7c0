"""Hostile price files: whatever a CSV holds, the import never fails with a traceback.

Each line is imported, counted as a duplicate, or rejected with a one-line reason; a file
that cannot be read at all is one clear ``ImportFileError``; nothing else escapes.
"""
from __future__ import annotations

import csv
import io

import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from smsgw.models import PriceObservation
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
# A line the catalog knows, then the same with one cell (or more) replaced by odd values.
good = st.fixed_dictionaries({
    "date": st.sampled_from(["2026-11-18", "2026-11-19", "2026-11-20"]), "market": st.sampled_from(["nakuru", "eldoret"]),
    "commodity": st.sampled_from(["maize", "beans"]), "unit": st.sampled_from(["bag90", "kg"]),
    "price": st.sampled_from(["4300", "45.5", "4200.004"]), "currency": st.just("KES"), "kind": st.just("wholesale"),
})
odd = st.fixed_dictionaries({name: st.one_of(st.sampled_from(CELLS[name]), junk) for name in GENERIC_COLUMNS})
row = st.one_of(good, odd, st.builds(lambda a, b, keep: {k: (a if k in keep else b)[k] for k in a},
                                     good, odd, st.sets(st.sampled_from(GENERIC_COLUMNS), min_size=5)))


def _file(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(GENERIC_COLUMNS))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8", "surrogatepass")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(row, min_size=1, max_size=6))
def test_any_generic_file_is_imported_line_by_line_or_refused_whole(session, tmp_path, rows) -> None:
    path = tmp_path / "hostile.csv"
    path.write_bytes(_file(rows))
    before = session.scalar(sa.select(sa.func.count()).select_from(PriceObservation))
    try:
        summary = import_prices(session, path, "generic", source="import:hostile", policy=TRUSTED)
    except ImportFileError as error:
        assert str(error) and "\n" not in str(error)
        return
    event("some line imported" if summary.imported else "no line imported")
    assert summary.imported + summary.duplicates + summary.rejected_count == summary.rows_read <= len(rows)
    assert all(reason and "\n" not in reason for _, reason in summary.rejected)
    after = session.scalar(sa.select(sa.func.count()).select_from(PriceObservation))
    assert after - before == summary.imported
    assert session.scalar(
        sa.select(sa.func.count()).select_from(PriceObservation)
        .where(PriceObservation.source == "import:hostile", PriceObservation.price_per_base <= 0)
    ) == 0


WFP_HEADER = ["date", "admin1", "admin2", "market", "latitude", "longitude", "category", "commodity", "unit",
              "priceflag", "pricetype", "currency", "price", "usdprice"]
coordinate = st.one_of(st.sampled_from(["-0.28", "35.07", "1e400", "NaN", "-inf", "181", ""]), junk)
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


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(wfp_row, min_size=1, max_size=6))
def test_any_wfp_file_creating_markets_never_fails(session, tmp_path, rows) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=WFP_HEADER)
    writer.writeheader()
    writer.writerow({name: f"#{name}" for name in WFP_HEADER})  # the HXL tag row
    writer.writerows(rows)
    path = tmp_path / "wfp.csv"
    path.write_bytes(out.getvalue().encode("utf-8", "surrogatepass"))
    try:
        summary = import_prices(session, path, "wfp", source="import:hostile", policy=TRUSTED, create_missing=True)
    except ImportFileError as error:
        assert str(error) and "\n" not in str(error)
        return
    assert summary.imported + summary.duplicates + summary.rejected_count == summary.rows_read <= len(rows)
    assert all(reason and "\n" not in reason for _, reason in summary.rejected)
