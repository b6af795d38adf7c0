"""Group orders: open ones first, then past ones, each with its commitments and totals."""
from __future__ import annotations

import datetime as dt
import decimal
import io

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from smsgw.conversations.sms.keywords import parse_number
from smsgw.csv_safe import SafeWriter
from smsgw.db import utcnow
from smsgw.models import Commitment, GroupOrder
from smsgw.services import orders as order_service
from smsgw.services import settlement
from smsgw.web.admin import audit, bp
from smsgw.web.admin.auth import requires
from smsgw.web.admin.forms import ActionForm
from smsgw.web.admin.i18n import local_today, tr
from smsgw.web.admin.views.common import args_without_page, db, paginate


def _order_options() -> list[so.interfaces.LoaderOption]:
    return [
        so.joinedload(GroupOrder.group), so.joinedload(GroupOrder.commodity), so.joinedload(GroupOrder.unit),
        so.joinedload(GroupOrder.grade), so.joinedload(GroupOrder.buyer),
    ]


@bp.get("/orders")
@requires("operator")
def orders() -> str:
    """Open orders (soonest deadline first), then past orders (newest first)."""
    session = db()
    open_rows = session.scalars(
        sa.select(GroupOrder)
        .options(*_order_options())
        .where(GroupOrder.status == "open")
        .order_by(GroupOrder.deadline)
        .limit(200)
    ).all()
    past = paginate(
        session,
        sa.select(GroupOrder)
        .options(*_order_options())
        .where(GroupOrder.status != "open")
        .order_by(GroupOrder.created_at.desc(), GroupOrder.id.desc()),
    )
    ids = [order.id for order in open_rows] + [order.id for order in past.rows]
    members = (
        dict(
            session.execute(
                sa.select(Commitment.order_id, sa.func.count(Commitment.id))
                .where(Commitment.order_id.in_(ids))
                .group_by(Commitment.order_id)
            ).all()
        )
        if ids
        else {}
    )
    return render_template(
        "admin/orders.html", open_orders=open_rows, past=past, members=members, page_args=args_without_page()
    )


@bp.get("/orders/<int:order_id>")
@requires("operator")
def order(order_id: int) -> str:
    """One order: who committed how much, delivered, and what it comes to."""
    session = db()
    found = session.scalar(
        sa.select(GroupOrder)
        .options(*_order_options(), so.selectinload(GroupOrder.price_tiers))
        .where(GroupOrder.id == order_id)
    ) or abort(404)
    commitments = session.scalars(
        sa.select(Commitment).options(so.joinedload(Commitment.contact), so.joinedload(Commitment.unit))
        .where(Commitment.order_id == found.id).order_by(Commitment.created_at, Commitment.id)
    ).all()
    delivered = sum((item.delivered_quantity or decimal.Decimal(0) for item in commitments), decimal.Decimal(0))
    price = found.final_price or found.price
    value = (found.committed_total * price).quantize(decimal.Decimal("0.01")) if price is not None else None
    progress = float(found.committed_total / found.target_quantity) if found.target_quantity else None
    lines = settlement.member_lines(session, found)
    return render_template(
        "admin/order.html", order=found, commitments=commitments, delivered=delivered, value=value, progress=progress,
        lines=lines, grades=settlement.grades_for(session, found), settled=settlement.is_settled(found),
        action_form=ActionForm(), today=local_today(), fee=settlement.fee_for(found, current_app.config),
        payouts=sum((line.payout or decimal.Decimal(0) for line in lines), decimal.Decimal(0)),
        disputes=[line for line in lines if line.confirmation == "disputed"],
    )


def _refusal(error: order_service.OrderError) -> str:
    """An operator's sentence for a refused settlement step."""
    reasons = {
        "not_closed": tr("Close the order before recording deliveries or settling it."),
        "already_settled": tr("This order is already settled."),
        "not_settled": tr("Settle the order before recording payment references."),
        "missing_delivery": tr("Record every member's delivery first (0 for none)."),
        "no_delivery": tr("Nothing was delivered: there is nothing to pay."),
        "bad_fee": tr("The group fee must be below the final price."),
        "bad_date": tr("The date the buyer paid must lie between the order's opening and today."),
        "bad_reference": tr("A payment reference is 3 to 40 letters or digits."),
    }
    return reasons.get(error.code, tr("Not saved: %(reason)s", reason=str(error)))


def _refused(session: so.Session, order_id: int, error: order_service.OrderError) -> Response:
    """Nothing of a refused form is kept: back to the order page with the reason."""
    session.rollback()
    flash(_refusal(error), "error")
    return redirect(url_for("admin.order", order_id=order_id))


def _decimal(text: str | None) -> decimal.Decimal | None:
    """A number as operators type it, read as SMS numbers are ("4,300" thousands, "4,5" a
    decimal comma); None when it cannot be told."""
    value = parse_number((text or "").strip())
    return value if value is not None and value.is_finite() else None


@bp.post("/orders/<int:order_id>/deliveries")
@requires("operator")
def order_deliveries(order_id: int) -> Response:
    """What each member delivered and the grade found, from the order page's bulk form (audited)."""
    session = db()
    found = session.get(GroupOrder, order_id) or abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    changes: dict[str, object] = {}
    try:
        for item in settlement.members(session, found):
            amount = _decimal(request.form.get(f"delivered-{item.contact_id}"))
            grade = request.form.get(f"grade-{item.contact_id}") or None
            if amount is None:
                continue
            row = settlement.deliver(session, order_id, item.contact_id, amount, leader=None,
                                     grade=int(grade) if grade and grade.isdigit() else None, now=utcnow())
            changes[str(item.contact_id)] = {"delivered": row.delivered_quantity, "grade": row.delivered_grade_id}
    except order_service.OrderError as error:
        return _refused(session, order_id, error)
    if changes:
        audit.record(session, "deliveries", "group_order", order_id, None, changes)
        session.commit()
        flash(tr("Deliveries saved."), "info")
    return redirect(url_for("admin.order", order_id=order_id))


@bp.post("/orders/<int:order_id>/settle")
@requires("operator")
def order_settle(order_id: int) -> Response:
    """Record the final price and the day the buyer paid; payouts and statements follow (audited)."""
    session = db()
    session.get(GroupOrder, order_id) or abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    price = _decimal(request.form.get("final_price"))
    fee_text = (request.form.get("fee_per_unit") or "").strip()
    fee = _decimal(fee_text) if fee_text else None
    try:
        paid_on = dt.date.fromisoformat(request.form.get("paid_on") or "")
    except ValueError:
        paid_on = None
    if price is None or paid_on is None or (fee_text and fee is None):
        flash(tr("Give the final price and the date the buyer paid."), "error")
        return redirect(url_for("admin.order", order_id=order_id))
    try:
        done = settlement.settle(session, order_id, final_price=price, paid_on=paid_on, fee_per_unit=fee,
                                 leader=None, settings=current_app.config, now=utcnow())
    except order_service.OrderError as error:
        return _refused(session, order_id, error)
    audit.record(session, "settle", "group_order", order_id, None, {
        "final_price": done.order.final_price, "paid_on": paid_on, "fee_per_unit": done.order.fee_per_unit,
        "members": done.members, "total": done.total,
    })
    session.commit()
    flash(tr("Order settled: each member gets their statement by SMS."), "info")
    return redirect(url_for("admin.order", order_id=order_id))


@bp.post("/orders/<int:order_id>/references")
@requires("operator")
def order_references(order_id: int) -> Response:
    """Payment references the leader gave, one per member; each member is asked to confirm (audited)."""
    session = db()
    found = session.get(GroupOrder, order_id) or abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    changes: dict[str, object] = {}
    try:
        for item in settlement.members(session, found):
            code = (request.form.get(f"ref-{item.contact_id}") or "").strip()
            if not code or code.upper() == (item.payment_reference or ""):
                continue
            changes[str(item.contact_id)] = settlement.record_reference(
                session, order_id, item.contact_id, code, leader=None, now=utcnow()).payment_reference
    except order_service.OrderError as error:
        return _refused(session, order_id, error)
    if changes:
        audit.record(session, "payment_references", "group_order", order_id, None, changes)
        session.commit()
        flash(tr("Payment references saved."), "info")
    return redirect(url_for("admin.order", order_id=order_id))


CSV_HEADER = (
    "order", "position", "member", "phone", "committed", "unit", "delivered", "grade", "final_price", "fee_per_unit",
    "payout", "currency", "paid_on", "payment_reference", "confirmation", "confirmed_at", "dispute_note",
)


@bp.get("/orders/<int:order_id>/members.csv")
@requires("operator")
def order_csv(order_id: int) -> Response:
    """Each member's commitment, delivery, payout and confirmation, for the group's treasurer."""
    session = db()
    found = session.get(GroupOrder, order_id) or abort(404)
    out = io.StringIO()
    writer = SafeWriter(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for line in settlement.member_lines(session, found):
        item = line.commitment
        writer.writerow([
            found.id, line.position, line.contact.name or "", line.contact.phone, line.committed, found.unit.code,
            line.delivered if line.delivered is not None else "", line.grade, found.final_price or "",
            found.fee_per_unit if found.fee_per_unit is not None else "",
            line.payout if line.payout is not None else "",
            found.currency, found.paid_on.isoformat() if found.paid_on else "", line.reference, line.confirmation,
            item.confirmed_at.isoformat() if item.confirmed_at else "", item.dispute_note or "",
        ])
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f"attachment; filename=order-{found.id}-members.csv"
    return response
