"""``smsgw import-sales``: a baseline survey's sales in, bad lines out with reasons, nothing twice (issue 19)."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from smsgw.cli import main
from smsgw.config import load_settings
from smsgw.db import Database, utcnow
from smsgw.models import Contact, Market, OutboundMessage, SaleReport, Subscription
from smsgw.services.sale_import import import_sales
from tests.support.databases import BACKENDS, fresh_database

HEADER = "phone,date,commodity,quantity,unit,price,buyer_type,market,currency,ref\n"


@pytest.fixture(scope="module", params=BACKENDS)
def url(request, tmp_path_factory) -> Iterator[str]:
    """A migrated, seeded database of this module's own (the command commits for real)."""
    with fresh_database(tmp_path_factory.mktemp("sales"), request.param) as database_url:
        yield database_url


@pytest.fixture(scope="module")
def today() -> dt.date:
    """Today where the service is, as the command sees it."""
    return utcnow().astimezone(ZoneInfo(load_settings()["SMSGW_TIMEZONE"])).date()


def _cli(url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["import-sales", *args], env={"DATABASE_URL": url})


def _file(tmp_path: Path, body: str, name: str = "survey.csv") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def _sales(url: str, *phones: str) -> list[tuple]:
    db = Database(url)
    try:
        with db.session(read_only=True) as session:
            return [tuple(row) for row in session.execute(
                sa.select(Contact.phone, SaleReport.sold_on, SaleReport.quantity, SaleReport.price,
                          SaleReport.currency, SaleReport.buyer_type, Market.code, SaleReport.channel)
                .join(Contact, Contact.id == SaleReport.contact_id).join(Market, Market.id == SaleReport.market_id)
                .where(Contact.phone.in_(phones), SaleReport.channel == "import").order_by(SaleReport.id)
            )]
    finally:
        db.dispose()


def test_good_lines_go_in_and_each_bad_line_is_named_with_its_reason(url, tmp_path, today) -> None:
    day, old = today - dt.timedelta(days=200), today - dt.timedelta(days=6 * 366)
    body = HEADER + "\n".join([
        f"+254700000004,{day},maize,10,bag90,3900,trader,nakuru,KES,",  # 2: a known farmer
        f"0722000101,{day:%d/%m/%Y},Mahindi,5,90 kg,4000,market,Nakuru,,",  # 3: new number, national, aliases
        f"+254722000102,{today + dt.timedelta(days=1)},maize,1,bag90,3900,trader,nakuru,KES,",  # 4: future
        f"+254722000102,{old},maize,1,bag90,3900,trader,nakuru,KES,",  # 5: beyond five years
        f"+254722000102,{day},maize,0,bag90,3900,trader,nakuru,KES,",  # 6
        f"+254722000102,{day},unobtainium,1,bag90,3900,trader,nakuru,KES,",  # 7
        f"+254722000102,{day},maize,1,bag90,3900,trader,atlantis,KES,",  # 8
        f"+254722000102,{day},maize,1,bag90,3900,trader,nakuru,XOF,",  # 9
        f"+254722000102,{day},maize,1,bag90,4,300,trader,nakuru,KES",  # 10: a comma in the price
        f"+2547220001xx,{day},maize,1,bag90,3900,trader,nakuru,KES,",  # 11
        f"+254722000102,{day},maize,1,bag90,3900,somebody,nakuru,KES,",  # 12
        "",
        f"+254722000102,31/02/{today.year},maize,1,bag90,3900,trader,nakuru,KES,",  # 14: blank line 13 skipped
        f"+221770000003,{day},millet,2,bag100,28000,processor,kaolack,XOF,S-1",  # 15
    ]) + "\n"
    result = _cli(url, str(_file(tmp_path, body)))
    assert result.exit_code == 0, result.output
    rejected = dict(line.split(": ", 1) for line in result.stderr.splitlines() if line.startswith("line "))
    assert sorted(rejected) == sorted(f"line {n}" for n in (4, 5, 6, 7, 8, 9, 10, 11, 12, 14)), result.stderr
    assert rejected["line 4"].startswith("date ") and "after today" in rejected["line 4"]
    assert "more than 1830 days before today" in rejected["line 5"]
    assert rejected["line 6"] == "quantity 0 is not above 0"
    assert rejected["line 7"] == "unknown commodity 'unobtainium'"
    assert rejected["line 8"] == "unknown market 'atlantis'"
    assert rejected["line 9"] == "currency XOF is not the market's currency KES"
    assert rejected["line 11"] == "phone '+2547220001xx' is not a valid number"
    assert rejected["line 12"].startswith("buyer_type 'somebody' is not one of")
    assert rejected["line 14"] == f"date '31/02/{today.year}' does not exist"
    assert result.stdout.strip().startswith("survey.csv: 13 rows; imported 3, already imported 0, "
                                            "repeated in the file 0, rejected 10; new contacts 1"), result.stdout
    stored = _sales(url, "+254700000004", "+254722000101", "+221770000003")
    assert stored == [
        ("+254700000004", day, 10, 3900, "KES", "farm_gate_trader", "nakuru", "import"),
        ("+254722000101", day, 5, 4000, "KES", "market", "nakuru", "import"),
        ("+221770000003", day, 2, 28000, "XOF", "processor", "kaolack", "import"),
    ]
    db = Database(url)
    try:
        with db.session(read_only=True) as session:
            new = session.scalar(sa.select(Contact).where(Contact.phone == "+254722000101"))
            # A survey respondent: no consent given, no alerts, not enrolled, sent nothing.
            assert (new.consent, new.enrolled_at, new.language_chosen) == ("unknown", None, False)
            assert not session.scalars(sa.select(Subscription).where(Subscription.contact_id == new.id)).all()
            assert not session.scalars(sa.select(OutboundMessage).where(OutboundMessage.to_phone == new.phone)).all()
            sale = session.scalar(sa.select(SaleReport).where(SaleReport.contact_id == new.id))
            assert sale.price_per_base == (decimal.Decimal(4000) / 90).quantize(decimal.Decimal("0.000001"))
    finally:
        db.dispose()


def test_importing_again_adds_nothing_whatever_the_spelling_and_order(url, tmp_path, today) -> None:
    day = today - dt.timedelta(days=30)
    rows = [
        f"+254722000201,{day},maize,10,bag90,3900,trader,nakuru,KES,",
        f"+254722000201,{day - dt.timedelta(days=7)},maize,12,bag90,3800,market,nakuru,KES,",
        f"+254722000202,{day},beans,2,bag90,7000,processor,nakuru,,B-7",
    ]
    first = _cli(url, str(_file(tmp_path, HEADER + "\n".join(rows) + "\n", "first.csv")))
    assert first.exit_code == 0 and "imported 3, already imported 0" in first.stdout, first.output
    before = _sales(url, "+254722000201", "+254722000202")
    # The same sales written another way, in another order: the same sales, stored once.
    respelt = [
        f"+254722000202,{day:%d/%m/%Y},Beans,2.0,BAG90,7000.00,processor,Nakuru,kes,B-7",
        f"0722 000 201,{day:%d/%m/%Y},MAIZE,10,90 kg,3900,farm gate,NAKURU,,",
        f"+254 722 000 201,{day - dt.timedelta(days=7)},mahindi,12.000,bag90,3800,Market,nakuru,KES,",
    ]
    semicolons = HEADER.replace(",", ";") + "\n".join(row.replace(",", ";") for row in respelt) + "\n"
    again = _cli(url, str(_file(tmp_path, semicolons, "again.csv")))
    assert again.exit_code == 0, again.output
    assert "imported 0, already imported 3, repeated in the file 0, rejected 0; new contacts 0" in again.stdout
    assert again.stderr == ""
    assert _sales(url, "+254722000201", "+254722000202") == before


def test_a_ref_imported_before_with_other_values_is_refused_not_changed(url, tmp_path, today) -> None:
    day = today - dt.timedelta(days=10)
    row = f"+254722000301,{day},maize,10,bag90,{{price}},trader,nakuru,KES,R-301\n"
    assert _cli(url, str(_file(tmp_path, HEADER + row.format(price=3900), "one.csv"))).exit_code == 0
    changed = _cli(url, str(_file(tmp_path, HEADER + row.format(price=3950), "two.csv")))
    assert changed.exit_code == 0
    assert changed.stderr.strip() == "line 2: ref R-301 was imported before with other values: not changed"
    assert [sale[3] for sale in _sales(url, "+254722000301")] == [3900]


def test_repeats_within_a_file_are_stored_once_and_said_across_batches(url, tmp_path, today) -> None:
    day = today - dt.timedelta(days=12)
    same = f"+254722000401,{day},maize,3,bag90,3900,trader,nakuru,KES,"
    rows = [same, f"+254722000402,{day},maize,4,bag90,3900,trader,nakuru,KES,", same,
            f"+254722000403,{day},maize,5,bag90,3900,trader,nakuru,KES,R-1",
            f"+254722000403,{day},maize,6,bag90,3900,trader,nakuru,KES,R-1", same]
    path = _file(tmp_path, HEADER + "\n".join(rows) + "\n")
    rejected: list[tuple[int, str]] = []
    db = Database(url)
    try:
        with db.session() as session:
            result = import_sales(session, path, today=today, region="KE", language="en",
                                  reject=lambda line, reason: rejected.append((line, reason)), batch_size=2)
    finally:
        db.dispose()
    assert (result.rows, result.imported, result.repeated, result.rejected, result.already) == (6, 3, 2, 1, 0)
    assert sorted(rejected) == [
        (4, "same sale as an earlier line: stored once (give each sale a ref to keep both)"),
        (6, "ref R-1 is also on an earlier line with other values"),
        (7, "same sale as an earlier line: stored once (give each sale a ref to keep both)"),
    ], rejected
    assert len(_sales(url, "+254722000401")) == 1


def test_a_survey_timestamp_counts_by_its_day_and_a_day_needs_its_year(url, tmp_path, today) -> None:
    day = today - dt.timedelta(days=40)
    body = HEADER + "\n".join([
        f"+254722000701,{day}T08:30:00,maize,3,bag90,3900,trader,nakuru,KES,",
        f"+254722000702,{day} 17:05,maize,4,bag90,3950,trader,nakuru,KES,",
        f"+254722000703,{day:%d/%m},maize,5,bag90,4000,trader,nakuru,KES,",
    ]) + "\n"
    result = _cli(url, str(_file(tmp_path, body)))
    assert result.exit_code == 0, result.output
    assert f"line 4: date '{day:%d/%m}' is not YYYY-MM-DD or DD/MM/YYYY" in result.stderr
    assert [row[:2] for row in _sales(url, "+254722000701", "+254722000702", "+254722000703")] == [
        ("+254722000701", day), ("+254722000702", day),
    ]


def test_a_huge_number_is_a_rejected_line_and_a_nul_in_a_ref_is_dropped(url, tmp_path, today) -> None:
    body = HEADER + "\n".join([
        f"+254722000801,{today},maize,{'1' * 30},bag90,3900,trader,nakuru,KES,",
        f"+254722000801,{today},maize,1,bag90,{'9' * 40},trader,nakuru,KES,",
        f"+254722000802,{today},maize,2,bag90,3900,trader,nakuru,KES,S-\x00-9",
    ]) + "\n"
    result = _cli(url, str(_file(tmp_path, body)))
    assert result.exit_code == 0, result.output
    assert f"line 2: quantity {'1' * 30} is too large" in result.stderr
    assert f"line 3: price {'9' * 40} is too large" in result.stderr
    assert [row[:3] for row in _sales(url, "+254722000801", "+254722000802")] == [("+254722000802", today, 2)]


def test_rejects_can_go_to_a_file(url, tmp_path, today) -> None:
    body = HEADER + f"+254722000501,{today},maize,1,bag90,3900,nobody,nakuru,KES,\n"
    rejects = tmp_path / "rejects.csv"
    result = _cli(url, str(_file(tmp_path, body)), "--rejects", str(rejects))
    assert result.exit_code == 0 and result.stderr == ""
    assert f"(see {rejects})" in result.stdout
    with rejects.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["line", "reason"] and len(rows) == 2
    assert rows[1][0] == "2" and rows[1][1].startswith("buyer_type 'nobody' is not one of")


def test_a_file_that_cannot_be_read_is_one_clear_line(url, tmp_path, today) -> None:
    missing = _cli(url, str(_file(tmp_path, "phone,date,commodity\n+254722000601,2025-01-01,maize\n")))
    assert missing.exit_code == 1
    assert missing.stderr.strip().startswith(
        "Error: line 1: missing column(s) quantity, unit, price, buyer_type, market;")
    good = f"+254722000602,{today},maize,1,bag90,3900,trader,nakuru,KES,\n"
    broken = HEADER.encode() + good.encode() + b"+254722000603,\xff,maize,1,bag90,3900,trader,nakuru,KES,\n"
    (tmp_path / "latin1.csv").write_bytes(broken)
    result = _cli(url, str(tmp_path / "latin1.csv"))
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: line 3: latin1.csv is not UTF-8 text; the lines before it were imported"
    assert len(_sales(url, "+254722000602")) == 1  # the good line before it went in
