"""Admin pages: what they show, what operators change (audited), and that farmer text is escaped."""
from __future__ import annotations

import datetime as dt
import decimal
import io

import pytest
import sqlalchemy as sa

from smsgw.db import utcnow
from smsgw.models import (
    AuditEntry,
    BulletinRun,
    Commodity,
    Contact,
    InboundMessage,
    Market,
    OutboundMessage,
    PriceObservation,
    PriceReporter,
    Unit,
)
from smsgw.web.database import get_session
from tests.test_admin_fixtures import post

# The shared admin fixtures (users, as_role, operator) come from this plugin module.
pytest_plugins = ["tests.test_admin_fixtures"]

PAGES = [
    "/admin/", "/admin/catalog", "/admin/prices", "/admin/prices/review", "/admin/people", "/admin/groups",
    "/admin/reporters", "/admin/orders", "/admin/messages", "/admin/messages?direction=in", "/admin/bulletins",
    "/admin/simulator", "/admin/simulator?mode=sms", "/admin/analytics", "/admin/users", "/admin/audit",
]
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _add(app, *rows):
    with app.app_context():
        session = get_session()
        session.add_all(rows)
        session.commit()
        return [row.id for row in rows]


def _get(app, model, row_id):
    with app.app_context():
        return get_session().get(model, row_id)


def _audits(app, entity: str) -> list[AuditEntry]:
    with app.app_context():
        return list(
            get_session().scalars(sa.select(AuditEntry).where(AuditEntry.entity == entity).order_by(AuditEntry.id))
        )


def _pending_price(app, amount: str = "9999") -> int:
    with app.app_context():
        session = get_session()
        market = session.scalar(sa.select(Market).where(Market.code == "nakuru"))
        maize = session.scalar(sa.select(Commodity).where(Commodity.code == "maize"))
        unit = maize.default_unit
        row = PriceObservation(
            commodity_id=maize.id,
            market_id=market.id,
            observed_on=dt.date.today(),
            amount=decimal.Decimal(amount),
            unit_id=unit.id,
            currency=market.currency,
            price_per_base=(decimal.Decimal(amount) / unit.factor).quantize(decimal.Decimal("0.000001")),
            kind="wholesale",
            source="sms",
            source_ref=f"test:{amount}",
            status="pending",
            status_reason="+140% vs 90-day median KES 50.00/kg in Nakuru Wakulima (robust z 9.1)",
        )
        session.add(row)
        session.commit()
        return row.id


def _failed_message(
    app, reason: str = "AbsentSubscriber", text: str = "Prices 1 Jan: Maize Nakuru KSh 4,100/90kg bag"
) -> int:
    return _add(
        app,
        OutboundMessage(
            idempotency_key=f"test:{reason}:{text[:20]}",
            to_phone="+254700000003",
            text=text,
            purpose="bulletin",
            priority=5,
            status="failed",
            attempts=6,
            last_error=reason,
            final_at=utcnow(),
        ),
    )[0]


@pytest.mark.parametrize("page", PAGES)
def test_main_pages_render_light(as_role, page) -> None:
    response = as_role("admin").get(page)
    assert response.status_code == 200, page
    body = response.get_data()
    assert len(body) < 100_000, (page, len(body))
    assert b"<script" not in body  # no JavaScript needed anywhere


def test_dashboard_shows_today_month_and_open_work(app, operator) -> None:
    _failed_message(app, "AbsentSubscriber")
    _pending_price(app)
    page = operator.get("/admin/").get_data(as_text=True)
    assert "AbsentSubscriber" in page
    assert 'id="pending-prices"' in page and "Review them" in page
    with app.app_context():
        from smsgw.web.admin.views.dashboard import dashboard_stats

        stats = dashboard_stats(get_session(), app.config)
    assert stats.pending_prices >= 1 and stats.outbound_today >= 1 and stats.segments_month >= 1
    assert stats.failures[0][0] == "AbsentSubscriber"
    assert stats.cost_month.get("KES", 0) > 0  # +254 numbers are costed in Kenyan shillings


def test_review_approves_a_held_price_and_the_service_audits_it(app, operator) -> None:
    price_id = _pending_price(app, "9999")
    queue = operator.get("/admin/prices/review").get_data(as_text=True)
    assert f'id="price-{price_id}"' in queue and "robust z 9.1" in queue and "Recent approved prices here" in queue
    response = post(operator, f"/admin/prices/{price_id}/review", {"approve": "Approve"})
    assert response.status_code == 302
    assert _get(app, PriceObservation, price_id).status == "approved"
    entry = _audits(app, "price_observation")[-1]
    assert (
        entry.action == "price.approve"
        and entry.before["status"] == "pending"
        and entry.actor == "operator@example.org"
    )


def test_review_corrects_or_rejects_with_a_reason(app, operator) -> None:
    corrected, rejected = _pending_price(app, "41000"), _pending_price(app, "1")
    post(operator, f"/admin/prices/{corrected}/review", {"correct": "x", "amount": "4100"})
    row = _get(app, PriceObservation, corrected)
    assert (row.status, row.amount) == ("approved", decimal.Decimal("4100.00"))
    assert post(operator, f"/admin/prices/{rejected}/review", {"reject": "x"}).status_code == 302
    assert _get(app, PriceObservation, rejected).status == "pending"  # a rejection needs its reason
    post(operator, f"/admin/prices/{rejected}/review", {"reject": "x", "note": "typo: one shilling"})
    assert _get(app, PriceObservation, rejected).status == "rejected"


def test_price_table_filters(app, operator) -> None:
    _pending_price(app)
    page = operator.get("/admin/prices?status=pending").get_data(as_text=True)
    assert "robust z 9.1" in page and page.count("badge pending") >= 1 and "badge approved" not in page


def test_csv_upload_goes_through_the_importer(app, operator) -> None:
    today = dt.date.today().isoformat()
    csv = (
        "date,market,commodity,unit,price,currency,kind\n"
        f"{today},nakuru,maize,bag90,4150,KES,wholesale\n"
        f"{today},nowhere,maize,bag90,1,KES,wholesale\n"
        f"{today},eldoret,maize,bag90,1e400,KES,wholesale\n"
    )
    response = post(
        operator,
        "/admin/prices/upload",
        {"file": (io.BytesIO(csv.encode()), "prices.csv"), "format": "generic", "dry_run": "1"},
        content_type="multipart/form-data",
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "Checked only" in page and 'id="summary"' in page
    assert "Rejected lines" in page and "price 1e400 is too large" in page


def test_failed_message_shows_why_and_retry_requeues_it(app, operator) -> None:
    message_id = _failed_message(app, "AbsentSubscriber")
    listing = operator.get("/admin/messages?status=failed").get_data(as_text=True)
    assert "AbsentSubscriber" in listing and f"/admin/messages/{message_id}/retry" in listing
    detail = operator.get(f"/admin/messages/{message_id}").get_data(as_text=True)
    assert "Why it failed" in detail and "AbsentSubscriber" in detail
    assert post(operator, f"/admin/messages/{message_id}/retry").status_code == 302
    row = _get(app, OutboundMessage, message_id)
    assert (row.status, row.attempts, row.final_at) == ("queued", 0, None)
    entry = _audits(app, "outbound_message")[-1]
    assert entry.action == "retry" and entry.before["status"] == "failed" and entry.after["status"] == "queued"
    post(operator, f"/admin/messages/{message_id}/retry")  # not failed any more: nothing happens
    assert len(_audits(app, "outbound_message")) == 1


def test_market_edit_is_audited_and_validated(app, operator) -> None:
    with app.app_context():
        market_id = get_session().scalar(sa.select(Market.id).where(Market.code == "nakuru"))
    form = {
        "name": "Nakuru Wakulima",
        "short_name": "Nakuru",
        "timezone": "Mars/Olympus",
        "currency": "KES",
        "bulletin_hour": "7",
    }
    bad = post(operator, f"/admin/catalog/markets/{market_id}", form)
    assert bad.status_code == 200 and "Unknown time zone" in bad.get_data(as_text=True)
    assert (
        post(operator, f"/admin/catalog/markets/{market_id}", {**form, "timezone": "Africa/Nairobi"}).status_code == 302
    )
    assert _get(app, Market, market_id).bulletin_hour == 7
    entry = _audits(app, "market")[-1]
    assert entry.before == {"bulletin_hour": 6} and entry.after == {"bulletin_hour": 7}


def test_commodity_names_and_aliases_per_language(app, operator) -> None:
    with app.app_context():
        maize = get_session().scalar(sa.select(Commodity).where(Commodity.code == "maize"))
        names = dict(maize.names)
    form = {f"name_{lang}": names.get(lang, "") for lang in ("en", "fr", "sw", "wo")}
    form |= {"aliases_en": "maize, corn, mayze", "aliases_sw": "mahindi"}
    assert post(operator, f"/admin/catalog/commodities/{maize.id}", form).status_code == 302
    with app.app_context():
        row = get_session().get(Commodity, maize.id)
        assert {(a.lang, a.alias) for a in row.aliases} == {
            ("en", "maize"),
            ("en", "corn"),
            ("en", "mayze"),
            ("sw", "mahindi"),
        }
    assert _audits(app, "commodity")[-1].after["aliases"]["en"] == ["corn", "maize", "mayze"]
    taken = post(operator, f"/admin/catalog/commodities/{maize.id}", {**form, "aliases_en": "maize, beans"})
    assert taken.status_code == 200 and "Already used by another commodity: beans" in taken.get_data(as_text=True)


def test_people_search_by_phone_or_name(operator) -> None:
    by_name = operator.get("/admin/people?q=wanjiru").get_data(as_text=True)
    assert "Wanjiru Kamau" in by_name and "Peter Kiprono" not in by_name
    by_phone = operator.get("/admin/people?q=0700000002").get_data(as_text=True)
    assert "Peter Kiprono" in by_phone and "Wanjiru Kamau" not in by_phone


def test_contact_page_shows_consent_alerts_and_history(app, operator) -> None:
    with app.app_context():
        session = get_session()
        person = session.scalar(sa.select(Contact).where(Contact.phone == "+254700000001"))
        person.consent = "withdrawn"
        person.withdrawn_at = utcnow()
        session.add(
            InboundMessage(
                gateway_id="t-stop", from_phone=person.phone, text="STOP", command="stop", contact_id=person.id
            )
        )
        session.commit()
        person_id = person.id
    page = operator.get(f"/admin/people/{person_id}").get_data(as_text=True)
    assert "opted out (STOP)" in page and "Maize" in page and "STOP" in page and "Nakuru" in page


def test_reporter_trust_change_is_audited(app, operator) -> None:
    with app.app_context():
        reporter = get_session().scalar(sa.select(PriceReporter).order_by(PriceReporter.id).limit(1))
        was = reporter.trusted
    prefix = f"r{reporter.id}-"
    data = {prefix + "active": "y"} | ({} if was else {prefix + "trusted": "y"})
    assert post(operator, f"/admin/reporters/{reporter.id}", data).status_code == 302
    assert _get(app, PriceReporter, reporter.id).trusted is (not was)
    assert _audits(app, "price_reporter")[-1].after == {"trusted": not was}


def test_bulletin_preview_in_the_contacts_language_with_segments(operator) -> None:
    page = operator.get("/admin/bulletins?phone=%2B254700000002").get_data(as_text=True)
    assert 'id="preview"' in page and "Peter Kiprono" in page and "language sw" in page
    assert "Bei" in page or "Nothing fresh to send" in page
    assert "segment" in page and "gsm7" in page


def test_send_bulletin_now_runs_once_and_is_listed(app, operator) -> None:
    first = post(operator, "/admin/bulletins/send", {"market": "nakuru", "kind": "daily"}, follow_redirects=True)
    assert "Queued" in first.get_data(as_text=True)
    again = post(operator, "/admin/bulletins/send", {"market": "nakuru", "kind": "daily"}, follow_redirects=True)
    assert "already sent" in again.get_data(as_text=True)
    with app.app_context():
        assert (
            get_session().scalar(sa.select(sa.func.count(BulletinRun.id)).join(Market).where(Market.code == "nakuru"))
            == 1
        )
    assert "Nakuru Wakulima" in operator.get("/admin/bulletins").get_data(as_text=True)
    assert _audits(app, "bulletin")[-1].after["kind"] == "daily"


# Playing as a real contact (the demo's farmer) takes both ticks; the sandbox is in test_simulator_sandbox.
REAL = {"as_real": "y", "confirm_real": "y"}


def test_simulator_plays_ussd_through_the_webhook_code(operator) -> None:
    dial = post(
        operator, "/admin/simulator/ussd", {"phone": "+254700000001", "dial": "Dial", **REAL}, page="/admin/simulator"
    )
    page = dial.get_data(as_text=True)
    assert "1 Prices" in page
    session_id = page.split('name="session_id" type="hidden" value="')[1].split('"')[0]
    crops = post(
        operator,
        "/admin/simulator/ussd",
        {"phone": "+254700000001", "session_id": session_id, "path": "", "key": "1", **REAL},
        page="/admin/simulator",
    )
    assert "Choose a crop" in crops.get_data(as_text=True)
    french = post(
        operator,
        "/admin/simulator/ussd",
        {"phone": "+254700000001", "lang": "fr", "dial": "Dial", **REAL},
        page="/admin/simulator",
    )
    assert "1 Prix" in french.get_data(as_text=True)


def test_simulator_sms_shows_the_reply_from_the_outbox(app, operator) -> None:
    response = post(
        operator,
        "/admin/simulator/sms",
        {"phone": "+254700000001", "text": "PRICE MAIZE", "send_sms": "Send", **REAL},
        page="/admin/simulator?mode=sms",
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "PRICE MAIZE" in page
    with app.app_context():
        session = get_session()
        inbound = session.scalar(
            sa.select(InboundMessage).where(InboundMessage.text == "PRICE MAIZE").order_by(InboundMessage.id.desc())
        )
        reply = session.scalar(
            sa.select(OutboundMessage).where(OutboundMessage.idempotency_key == f"reply:{inbound.id}")
        )
    assert reply is not None and reply.text in page.replace("&#39;", "'")


def test_farmer_text_is_escaped_everywhere(app, operator, as_role) -> None:
    with app.app_context():
        session = get_session()
        person = session.scalar(sa.select(Contact).where(Contact.phone == "+254700000001"))
        person.name = XSS
        session.add(
            InboundMessage(
                gateway_id="t-xss", from_phone=person.phone, text=XSS, command="unknown", contact_id=person.id
            )
        )
        session.commit()
        person_id = person.id
    message_id = _failed_message(app, XSS, text=XSS)
    admin = as_role("admin")
    for url in [
        "/admin/people?q=0700000001",
        f"/admin/people/{person_id}",
        "/admin/messages?direction=in",
        "/admin/messages",
        f"/admin/messages/{message_id}",
        "/admin/",
        "/admin/groups",
        "/admin/simulator?mode=sms&phone=%2B254700000001",
    ]:
        body = admin.get(url).get_data(as_text=True)
        assert "<script>alert" not in body and "<img src=x" not in body, url
    assert "&lt;script&gt;alert" in admin.get(f"/admin/people/{person_id}").get_data(as_text=True)


def test_users_are_created_and_the_last_admin_cannot_be_demoted(app, as_role, users) -> None:
    admin = as_role("admin")
    created = post(
        admin,
        "/admin/users",
        {"email": "New@Example.org", "role": "operator", "language": "fr", "password": "a long password"},
        page="/admin/users",
    )
    assert created.status_code == 302
    assert _audits(app, "operator_user")[-1].after["email"] == "new@example.org"
    me = users["admin"].id
    refused = post(admin, f"/admin/users/{me}", {"role": "viewer", "active": "y"}, page="/admin/users")
    assert "only active admin" in refused.get_data(as_text=True)
    log = admin.get("/admin/audit").get_data(as_text=True)
    assert "new@example.org" in log and "operator_user" in log


def test_admin_speaks_french(app, users, as_role) -> None:
    client = as_role("viewer")
    post(client, "/admin/language", {"language": "fr", "next": "/admin/"})
    page = client.get("/admin/").get_data(as_text=True)
    assert '<html lang="fr">' in page and "Tableau de bord" in page and "SMS reçus aujourd’hui" in page
    prices = client.get("/admin/prices").get_data(as_text=True)
    assert "Prix" in prices and "KES" in prices and "approuvé" in prices


def test_analytics_shows_the_report_and_plots(operator) -> None:
    page = operator.get("/admin/analytics").get_data(as_text=True)
    assert "Farmer price share" in page and 'id="headline"' in page
    assert "/admin/analytics/figures/price_share.png" in page
    figure = operator.get("/admin/analytics/figures/dispersion_maize.png")
    assert figure.status_code == 200 and figure.mimetype == "image/png" and figure.data[:4] == b"\x89PNG"
    assert operator.get("/admin/analytics/figures/nothing.png").status_code == 404


def test_units_are_listed_in_the_catalog(app, as_role) -> None:
    with app.app_context():
        unit = get_session().scalar(sa.select(Unit).order_by(Unit.id).limit(1))
    page = as_role("viewer").get("/admin/catalog").get_data(as_text=True)
    assert unit.code in page and 'id="markets"' in page and "Africa/Nairobi" in page and "Edit" not in page
