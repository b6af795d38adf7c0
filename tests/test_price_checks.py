"""Anomaly checks, the review queue, reporter receipts, and what reaches farmers."""

from __future__ import annotations

import datetime as dt
import decimal
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from smsgw.config import ConfigError
from smsgw.messaging.encoding import encode_for_sms
from smsgw.models import (
    AuditEntry,
    Commodity,
    Contact,
    Market,
    OutboundMessage,
    PriceObservation,
    Unit,
)
from smsgw.services import price_review
from smsgw.services.price_checks import Policy
from smsgw.services.price_import import import_prices
from smsgw.services.price_reports import ReportError, submit_report
from smsgw.services.prices import latest_quote

DATA = Path(__file__).parent / "data"
REPORTER = "+254700000010"  # trusted demo reporter for Nakuru and Eldoret
TODAY = dt.date.today()


def _get(session, model, code):
    return session.scalars(sa.select(model).where(model.code == code)).one()


def _import_outliers(
    session, sources: str = "import:test", as_of: dt.date | None = dt.date(2024, 3, 25)
) -> dict[tuple[str, str], PriceObservation]:
    policy = Policy(trusted_sources=frozenset(sources.split(",")))
    # The file's 2024 prices are checked against an empty history: the demo's past seasons
    # (content/prices/history.csv, source demo-history) go for this test's transaction.
    session.execute(sa.delete(PriceObservation).where(PriceObservation.source == "demo-history"))
    # Imported as of a week after the last row: its prices are current, not history.
    summary = import_prices(
        session, DATA / "prices_outliers.csv", "generic", source="import:test", policy=policy, as_of=as_of
    )
    assert summary.imported == 48 and summary.rejected_count == 0
    rows = session.scalars(
        sa.select(PriceObservation).where(PriceObservation.source == "import:test")
    )
    return {(row.market.code, row.observed_on.isoformat()): row for row in rows}


def test_planted_outliers_are_held_with_their_reason(session) -> None:
    rows = _import_outliers(session)
    doubled = rows[("nakuru", "2024-03-18")]
    assert doubled.status == "pending"
    assert re.fullmatch(
        r"\+99% vs 90-day median KES 50\.28/kg in Nakuru Wakulima \(robust z [\d.]+\);"
        r" \+111% vs median KES 47\.50/kg of 3 other KE markets that week",
        doubled.status_reason,
    ), doubled.status_reason
    missing_zero = rows[("kisumu", "2024-03-18")]
    assert missing_zero.status == "pending"
    assert missing_zero.status_reason == (
        "-90% vs 90-day median KES 51.11/kg in Kisumu Kibuye (a flat series);"
        " -90% vs median KES 54.44/kg of 3 other KE markets that week"
    )
    # Per kg instead of per bag is the same price once normalised.
    assert rows[("eldoret", "2024-03-18")].status == "approved"
    # A flat series has no spread (MAD 0): a 2% move must still pass.
    assert rows[("nairobi-wakulima", "2024-03-18")].status == "approved"
    held = [row for row in rows.values() if row.status == "pending"]
    assert len(held) == 2


def test_outliers_in_imported_history_are_flagged_not_held(session) -> None:
    rows = _import_outliers(session, as_of=None)  # today: the 2024 rows are long past 14 days
    doubled, missing_zero = rows[("nakuru", "2024-03-18")], rows[("kisumu", "2024-03-18")]
    for row in (doubled, missing_zero):
        assert row.status == "approved"
        assert row.status_reason.startswith("flagged, not held (history older than the price maximum age): ")
    assert "+99% vs 90-day median" in doubled.status_reason
    assert not [row for row in rows.values() if row.status == "pending"]


def test_an_untrusted_sources_history_is_held_outliers_included(session) -> None:
    rows = _import_outliers(session, sources="demo", as_of=None)
    doubled = rows[("nakuru", "2024-03-18")]
    # Held with its reason (no history is approved from it, so only the other markets judge).
    assert doubled.status == "pending" and doubled.status_reason.startswith("+111% vs median KES 47.50/kg")
    assert {row.status for row in rows.values()} == {"pending"}


def test_untrusted_source_holds_even_in_range_prices(session) -> None:
    rows = _import_outliers(session, sources="demo")
    first = rows[("nakuru", "2024-01-01")]
    assert (first.status, first.status_reason) == (
        "pending",
        "only 0 earlier prices to compare with",
    )
    assert {row.status for row in rows.values()} == {"pending"}


def test_policy_reads_settings_then_environment(monkeypatch) -> None:
    assert Policy.from_settings({}).trusts("import:wfp")
    policy = Policy.from_settings(
        {"PRICE_AUTO_APPROVE_SOURCES": "sms, import:fao", "PRICE_ANOMALY_Z": "5"}
    )
    assert policy.trusted_sources == {"sms", "import:fao"} and policy.z_threshold == 5
    monkeypatch.setenv("PRICE_ANOMALY_MIN_CHANGE", "0.3")
    assert Policy.from_settings({}).min_change == 0.3
    monkeypatch.setenv("PRICE_HISTORY_DAYS", "ninety")
    with pytest.raises(ConfigError, match="PRICE_HISTORY_DAYS must be a (whole )?number"):
        Policy.from_settings({})


def _report(
    session, amount: str, ref: str, market: str = "nakuru", unit: str = "bag90"
) -> PriceObservation:
    return submit_report(
        session,
        REPORTER,
        commodity=_get(session, Commodity, "maize"),
        market=_get(session, Market, market),
        amount=decimal.Decimal(amount),
        unit=_get(session, Unit, unit),
        day=TODAY,
        source_ref=ref,
    )


def test_in_range_report_from_trusted_reporter_is_published(session) -> None:
    usual = latest_quote(
        session, _get(session, Commodity, "maize"), _get(session, Market, "nakuru"), TODAY
    )
    row = _report(session, str(usual.amount), "at-1")
    assert (row.status, row.status_reason) == ("approved", "")
    assert _report(session, str(usual.amount), "at-1").id == row.id  # the same SMS twice


def test_sms_report_goes_pending_then_approved_then_visible(session) -> None:
    maize, nakuru = _get(session, Commodity, "maize"), _get(session, Market, "nakuru")
    usual = latest_quote(session, maize, nakuru, TODAY)
    high = (usual.amount * 2).quantize(decimal.Decimal(1))
    row = _report(session, str(high), "at-2")
    assert (
        row.status == "pending"
        and "vs 90-day median" in row.status_reason
        and "in Nakuru Wakulima" in row.status_reason
    )
    # Held prices never reach farmers.
    assert latest_quote(session, maize, nakuru, TODAY).amount == usual.amount
    price_review.approve(session, row.id)
    quote = latest_quote(session, maize, nakuru, TODAY)
    assert quote.day == TODAY and quote.amount > usual.amount
    receipt = session.scalars(
        sa.select(OutboundMessage).where(
            OutboundMessage.idempotency_key == f"price:{row.id}:approved"
        )
    ).one()
    assert (
        receipt.to_phone == REPORTER
        and receipt.purpose == "receipt"
        and "was published" in receipt.text
    )
    audit = session.scalars(
        sa.select(AuditEntry).where(
            AuditEntry.entity == "price_observation", AuditEntry.entity_id == str(row.id)
        )
    ).one()
    assert (audit.action, audit.actor, audit.before["status"], audit.after["status"]) == (
        "price.approve",
        "cli",
        "pending",
        "approved",
    )


@pytest.mark.parametrize("amount", ["0.001", "1000000000000", "1e40", "-5"])
def test_prices_that_cannot_be_stored_are_refused(session, amount) -> None:
    with pytest.raises(ReportError):
        _report(session, amount, f"at-odd-{amount}")


def test_reporter_cannot_report_for_other_markets(session) -> None:
    with pytest.raises(ReportError, match="not registered to report prices for this market"):
        _report(session, "4500", "at-3", market="kisumu")


def test_reject_tells_the_reporter_and_counts_in_their_record(session) -> None:
    row = _report(session, "99000", "at-4")
    assert row.status == "pending"
    before = {record.phone: record for record in price_review.reporter_records(session)}[REPORTER]
    price_review.reject(session, row.id, "a typo, no such price")
    assert row.status == "rejected" and row.status_reason == "a typo, no such price"
    receipt = session.scalars(
        sa.select(OutboundMessage).where(
            OutboundMessage.idempotency_key == f"price:{row.id}:rejected"
        )
    ).one()
    assert "was not published" in receipt.text
    after = {record.phone: record for record in price_review.reporter_records(session)}[REPORTER]
    assert (after.rejected, after.pending) == (before.rejected + 1, before.pending - 1)
    with pytest.raises(price_review.ReviewError, match="already rejected"):
        price_review.reject(session, row.id, "again")


def test_correct_publishes_the_new_amount_and_audits_the_old(session) -> None:
    row = _report(session, "45000", "at-5")
    price_review.correct(session, row.id, decimal.Decimal(4500))
    assert (row.status, row.amount, row.price_per_base) == ("approved", 4500, 50)
    audit = session.scalars(sa.select(AuditEntry).where(AuditEntry.entity_id == str(row.id))).one()
    assert (audit.action, audit.before["amount"], audit.after["amount"]) == (
        "price.correct",
        "45000.00",
        "4500.00",
    )


@pytest.mark.parametrize("amount", ["0", "0.001", "1e40"])
def test_a_correction_must_be_a_storable_price(session, amount) -> None:
    row = _report(session, "45000", f"at-fix-{amount}")
    with pytest.raises(price_review.ReviewError, match="must be above 0"):
        price_review.correct(session, row.id, decimal.Decimal(amount))
    assert row.status == "pending"


def test_approve_all_by_source_and_review_errors(session) -> None:
    rows = _import_outliers(session)
    other = _report(session, "99000", "at-6")
    held = [row.id for row in rows.values() if row.status == "pending"]
    assert {
        item.observation.id for item in price_review.list_pending(session, "import:test")
    } == set(held)
    pending = price_review.list_pending(session, "import:test")[0]
    assert len(pending.recent) == 5 and pending.observation.status_reason
    assert price_review.approve_all(session, "import:test") == 2
    assert price_review.count_pending(session, "import:test") == 0
    assert session.get(PriceObservation, other.id).status == "pending"
    audits = session.scalar(
        sa.select(sa.func.count())
        .select_from(AuditEntry)
        .where(AuditEntry.entity_id.in_([str(i) for i in held]))
    )
    assert audits == 2
    assert price_review.approve_all(session, "sms") == 1
    assert session.get(PriceObservation, other.id).status == "approved"
    key = f"price:{other.id}:approved"
    assert session.scalar(
        sa.select(OutboundMessage.id).where(OutboundMessage.idempotency_key == key)
    )
    with pytest.raises(price_review.ReviewError, match="already approved"):
        price_review.approve(session, held[0])
    with pytest.raises(price_review.ReviewError, match="no price with id"):
        price_review.approve(session, 10**9)


@pytest.mark.parametrize("lang", ["en", "fr", "sw", "wo"])
def test_receipts_fit_one_sms_with_long_values(session, lang) -> None:
    row = _report(session, "987654321", f"at-long-{lang}")
    contact = session.scalars(sa.select(Contact).where(Contact.phone == REPORTER)).one()
    contact.language = lang
    row.market.name = "A market with a very long official name that goes on and on, Nakuru County"
    for status in ("approved", "rejected"):
        row.status = status
        message = price_review.notify_reporter(session, row)
        assert (
            message is not None
            and len(message.text) <= 160
            and encode_for_sms(message.text, lang).segments == 1
        )


def test_opted_out_reporter_gets_no_receipt(session) -> None:
    row = _report(session, "99000", "at-7")
    contact = session.scalars(sa.select(Contact).where(Contact.phone == REPORTER)).one()
    contact.consent = "withdrawn"
    price_review.reject(session, row.id, "out of range")
    assert (
        session.scalar(
            sa.select(OutboundMessage).where(
                OutboundMessage.idempotency_key == f"price:{row.id}:rejected"
            )
        )
        is None
    )
