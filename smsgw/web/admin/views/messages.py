"""The message monitor: inbound and outbound SMS with state, reason, segments and cost."""
from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from smsgw.conversations.sms.intake import retry_inbound
from smsgw.db import rowcount, utcnow
from smsgw.models import DeliveryReport, InboundMessage, OutboundMessage
from smsgw.web.admin import audit, bp
from smsgw.web.admin.auth import requires
from smsgw.web.admin.forms import ActionForm, MessageFilterForm, options
from smsgw.web.admin.i18n import tr
from smsgw.web.admin.labels import choices
from smsgw.web.admin.views.common import args_without_page, db, like_pattern, paginate

RETRY_FIELDS = ("status", "attempts", "next_attempt_at", "final_at", "last_error", "gateway_message_id")
INBOUND_RETRY_FIELDS = ("status", "error", "command")
INBOUND_STATUSES = ("received", "handled", "error")


def _filter_form() -> MessageFilterForm:
    form = MessageFilterForm(request.args)
    form.direction.choices = options([("out", tr("outbound")), ("in", tr("inbound"))])
    if request.args.get("direction") == "in":
        form.status.choices = options(
            [("", tr("any")), ("received", tr("received")), ("handled", tr("handled")), ("error", tr("error"))]
        )
    else:
        form.status.choices = choices("outbox", blank=tr("any"))
    form.purpose.choices = choices("purpose", blank=tr("any"))
    form.validate()
    return form


def _digits(text: str | None) -> str:
    return "".join(ch for ch in (text or "") if ch.isdigit()).lstrip("0")


@bp.get("/messages")
@requires("operator")
def messages() -> str:
    """Outbound (default) or inbound messages, newest first, with filters."""
    session = db()
    form = _filter_form()
    phone = _digits(form.phone.data)
    if form.direction.data == "in":
        inbound = sa.select(InboundMessage).options(so.joinedload(InboundMessage.contact))
        if phone:
            inbound = inbound.where(InboundMessage.from_phone.like(like_pattern(phone), escape="\\"))
        if form.status.data in INBOUND_STATUSES:  # an outbound state left in the URL filters nothing
            inbound = inbound.where(InboundMessage.status == form.status.data)
        page = paginate(session, inbound.order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc()))
        return render_template(
            "admin/messages.html",
            form=form,
            page=page,
            inbound=True,
            action_form=ActionForm(),
            page_args=args_without_page(),
        )
    query = sa.select(OutboundMessage).options(so.joinedload(OutboundMessage.contact))
    if form.status.data:
        query = query.where(OutboundMessage.status == form.status.data)
    if form.purpose.data:
        query = query.where(OutboundMessage.purpose == form.purpose.data)
    if phone:
        query = query.where(OutboundMessage.to_phone.like(like_pattern(phone), escape="\\"))
    if form.reason.data:
        query = query.where(
            sa.func.lower(OutboundMessage.last_error).like(like_pattern(form.reason.data.lower()), escape="\\")
        )
    page = paginate(session, query.order_by(OutboundMessage.created_at.desc(), OutboundMessage.id.desc()))
    return render_template(
        "admin/messages.html",
        form=form,
        page=page,
        inbound=False,
        action_form=ActionForm(),
        page_args=args_without_page(),
    )


@bp.get("/messages/<int:message_id>")
@requires("operator")
def message(message_id: int) -> str:
    """One outbound message: its text, every attempt's trace and the delivery reports."""
    session = db()
    found = session.get(OutboundMessage, message_id) or abort(404)
    reports = session.scalars(
        sa.select(DeliveryReport).where(DeliveryReport.outbound_id == found.id).order_by(DeliveryReport.received_at)
    ).all()
    return render_template("admin/message.html", message=found, reports=reports, action_form=ActionForm())


@bp.post("/messages/<int:message_id>/retry")
@requires("operator")
def retry(message_id: int) -> Response:
    """Queue a failed message again, now, with a fresh count of attempts (audited).

    The first attempt's gateway id is cleared (kept in ``last_error`` and the audit
    entry): a late delivery report for it must not move the new attempt.
    """
    session = db()
    found = session.get(OutboundMessage, message_id) or abort(404)
    if found.status != "failed":
        flash(tr("Only failed messages can be retried."), "error")
        return redirect(url_for("admin.message", message_id=found.id))
    before = audit.snapshot(found, RETRY_FIELDS)
    trace = f"retried by an operator after: {found.last_error or 'failed'}"
    if found.gateway_message_id:
        trace += f" (first attempt {found.gateway_message_id})"
    # Conditional on the status, so a double click or two operators queue it once.
    done = rowcount(session.execute(
        sa.update(OutboundMessage)
        .where(OutboundMessage.id == found.id, OutboundMessage.status == "failed")
        .values(
            status="queued", attempts=0, next_attempt_at=utcnow(), final_at=None, gateway_message_id=None,
            last_error=trace[:500],
        )
        .execution_options(synchronize_session=False)
    ))
    session.refresh(found)
    if done:
        audit.record(session, "retry", "outbound_message", found.id, before, audit.snapshot(found, RETRY_FIELDS))
        session.commit()
        flash(tr("Message queued again; the drain sends it within a minute."), "info")
    return redirect(url_for("admin.message", message_id=found.id))


@bp.post("/messages/inbound/<int:message_id>/retry")
@requires("operator")
def retry_inbound_message(message_id: int) -> Response:
    """Handle an inbound SMS that failed again, now (audited); a handled one is left alone."""
    session = db()
    found = session.get(InboundMessage, message_id) or abort(404)
    before = audit.snapshot(found, INBOUND_RETRY_FIELDS)
    status = retry_inbound(session, current_app.config, found.id)
    if status is None:
        flash(tr("Only inbound messages in error can be retried."), "error")
    else:
        session.refresh(found)
        audit.record(session, "retry", "inbound_message", found.id, before, audit.snapshot(found, INBOUND_RETRY_FIELDS))
        session.commit()
        if status == "handled":
            flash(tr("Message handled."), "info")
        else:
            flash(tr("It failed again: %(error)s", error=found.error or ""), "error")
    return redirect(url_for("admin.messages", direction="in", status=request.args.get("status") or None))
