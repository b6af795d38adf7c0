"""People: contacts (search, consent, alerts, messages), producer groups, price reporters."""
from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from smsgw.db import like_pattern
from smsgw.models import (
    Contact,
    GroupMessage,
    GroupOrder,
    InboundMessage,
    Membership,
    OutboundMessage,
    PriceReporter,
    ProducerGroup,
    SaleReport,
    Subscription,
)
from smsgw.services import price_review
from smsgw.web.admin import audit, bp
from smsgw.web.admin.auth import requires
from smsgw.web.admin.forms import ContactForm, ReporterForm, SearchForm
from smsgw.web.admin.i18n import tr
from smsgw.web.admin.views.common import args_without_page, db, paginate

CONTACT_FIELDS = ("name", "language", "village")
HISTORY = 30


@bp.get("/people")
@requires("operator")
def people() -> str:
    """Contacts, searchable by phone or name."""
    session = db()
    form = SearchForm(request.args)
    query = sa.select(Contact).options(so.joinedload(Contact.home_market), so.selectinload(Contact.subscriptions))
    q = (form.q.data or "").strip() if form.validate() else ""
    if q:
        digits = "".join(ch for ch in q if ch.isdigit())
        found: sa.ColumnElement[bool] = sa.func.lower(Contact.name).like(like_pattern(q.lower()), escape="\\")
        # A national number (0712...) matches the stored E.164 (+254712...) without its 0.
        for part in {digits, digits.lstrip("0")}:
            if len(part) >= 3:
                found = sa.or_(found, Contact.phone.like(like_pattern(part), escape="\\"))
        query = query.where(found)
    page = paginate(session, query.order_by(Contact.name, Contact.id))
    return render_template("admin/people.html", form=form, page=page, q=q, page_args=args_without_page())


@bp.route("/people/<int:contact_id>", methods=["GET", "POST"])
@requires("operator")
def contact(contact_id: int) -> Response | str:
    """One contact: details an operator may correct, alerts, groups, messages, sales."""
    session = db()
    person = session.get(Contact, contact_id) or abort(404)
    form = ContactForm(obj=person)
    if form.validate_on_submit():
        before = audit.snapshot(person, CONTACT_FIELDS)
        person.name = (form.name.data or "").strip()
        person.language = form.language.data
        person.village = (form.village.data or "").strip()
        old, new = audit.changed(before, audit.snapshot(person, CONTACT_FIELDS))
        if new:
            audit.record(session, "update", "contact", person.id, old, new)
            session.commit()
            flash(tr("Contact saved."), "info")
        return redirect(url_for("admin.contact", contact_id=person.id))
    subscriptions = session.scalars(
        sa.select(Subscription).options(so.joinedload(Subscription.commodity), so.joinedload(Subscription.market))
        .where(Subscription.contact_id == person.id).order_by(Subscription.id)
    ).all()
    memberships = session.scalars(
        sa.select(Membership).options(so.joinedload(Membership.group)).where(Membership.contact_id == person.id)
    ).all()
    inbound = session.scalars(
        sa.select(InboundMessage)
        .where(InboundMessage.from_phone == person.phone)
        .order_by(InboundMessage.received_at.desc())
        .limit(HISTORY)
    ).all()
    outbound = session.scalars(
        sa.select(OutboundMessage)
        .where(OutboundMessage.to_phone == person.phone)
        .order_by(OutboundMessage.created_at.desc())
        .limit(HISTORY)
    ).all()
    history = sorted(
        [("in", m.received_at, m) for m in inbound] + [("out", m.created_at, m) for m in outbound],
        key=lambda item: item[1], reverse=True,
    )[:HISTORY]
    sales = session.scalars(
        sa.select(SaleReport).options(so.joinedload(SaleReport.commodity), so.joinedload(SaleReport.unit))
        .where(SaleReport.contact_id == person.id).order_by(SaleReport.sold_on.desc()).limit(10)
    ).all()
    reporter = session.scalar(sa.select(PriceReporter).where(PriceReporter.contact_id == person.id))
    return render_template(
        "admin/contact.html", person=person, form=form, subscriptions=subscriptions, memberships=memberships,
        history=history, sales=sales, reporter=reporter,
    )


@bp.get("/groups")
@requires("operator")
def groups() -> str:
    """Producer groups with their leaders, size and open orders."""
    session = db()
    rows = session.scalars(
        sa.select(ProducerGroup)
        .options(
            so.joinedload(ProducerGroup.market),
            so.selectinload(ProducerGroup.memberships).joinedload(Membership.contact),
            so.selectinload(ProducerGroup.commodities),
        )
        .order_by(ProducerGroup.name)
    ).all()
    open_orders = dict(
        session.execute(
            sa.select(GroupOrder.group_id, sa.func.count(GroupOrder.id))
            .where(GroupOrder.status == "open")
            .group_by(GroupOrder.group_id)
        ).all()
    )
    return render_template("admin/groups.html", groups=rows, open_orders=open_orders)


@bp.get("/groups/<int:group_id>")
@requires("operator")
def group(group_id: int) -> str:
    """One group: members by role, its orders, and the leader's last messages to it."""
    session = db()
    found = session.get(ProducerGroup, group_id) or abort(404)
    members = session.scalars(
        sa.select(Membership).options(so.joinedload(Membership.contact))
        .where(Membership.group_id == found.id).order_by(Membership.role.desc(), Membership.id)
    ).all()
    orders = session.scalars(
        sa.select(GroupOrder).options(so.joinedload(GroupOrder.commodity), so.joinedload(GroupOrder.unit))
        .where(GroupOrder.group_id == found.id).order_by(GroupOrder.created_at.desc()).limit(50)
    ).all()
    messages = session.scalars(
        sa.select(GroupMessage).where(GroupMessage.group_id == found.id)
        .order_by(GroupMessage.created_at.desc()).limit(20)
    ).all()
    return render_template("admin/group.html", group=found, members=members, orders=orders, messages=messages)


@bp.get("/reporters")
@requires("operator")
def reporters() -> str:
    """Price reporters: their markets, trust and whether they may report."""
    session = db()
    rows = session.scalars(
        sa.select(PriceReporter)
        .options(so.joinedload(PriceReporter.contact), so.selectinload(PriceReporter.markets))
        .order_by(PriceReporter.id)
    ).all()
    forms = {row.id: ReporterForm(obj=row, prefix=f"r{row.id}") for row in rows}
    records = {record.reporter_id: record for record in price_review.reporter_records(session)}
    return render_template("admin/reporters.html", reporters=rows, forms=forms, records=records)


@bp.post("/reporters/<int:reporter_id>")
@requires("operator")
def reporter_edit(reporter_id: int) -> Response:
    """Change a reporter's trust or active flag (audited)."""
    session = db()
    row = session.get(PriceReporter, reporter_id) or abort(404)
    form = ReporterForm(prefix=f"r{row.id}")
    if form.validate_on_submit():
        before = audit.snapshot(row, ("trusted", "active"))
        row.trusted, row.active = bool(form.trusted.data), bool(form.active.data)
        old, new = audit.changed(before, audit.snapshot(row, ("trusted", "active")))
        if new:
            audit.record(session, "update", "price_reporter", row.id, old, new)
            session.commit()
            flash(tr("Reporter saved."), "info")
    return redirect(url_for("admin.reporters"))
