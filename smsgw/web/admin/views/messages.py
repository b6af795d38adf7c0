"""The message monitor: inbound and outbound SMS with state, reason, segments and cost."""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from smsgw.conversations.sms.intake import retry_inbound
from smsgw.messaging import outbox
from smsgw.models import InboundMessage, OutboundMessage
from smsgw.services import message_log
from smsgw.web.admin import audit, bp
from smsgw.web.admin.auth import requires
from smsgw.web.admin.forms import ActionForm, MessageFilterForm, options
from smsgw.web.admin.i18n import tr
from smsgw.web.admin.labels import choices
from smsgw.web.admin.views.common import args_without_page, db, paginate

RETRY_FIELDS = ("status", "attempts", "next_attempt_at", "final_at", "last_error", "gateway_message_id")
INBOUND_RETRY_FIELDS = ("status", "error", "command")


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


@bp.get("/messages")
@requires("operator")
def messages() -> str:
    """Outbound (default) or inbound messages, newest first, with filters."""
    form = _filter_form()
    inbound = form.direction.data == "in"
    query = (message_log.inbound_query(form.phone.data or "", form.status.data or "") if inbound else
             message_log.outbound_query(form.phone.data or "", form.status.data or "", form.purpose.data or "",
                                        form.reason.data or ""))
    return render_template(
        "admin/messages.html",
        form=form,
        page=paginate(db(), query),
        inbound=inbound,
        action_form=ActionForm(),
        page_args=args_without_page(),
    )


@bp.get("/messages/<int:message_id>")
@requires("operator")
def message(message_id: int) -> str:
    """One outbound message: its text, every attempt's trace and the delivery reports."""
    found = db().get(OutboundMessage, message_id) or abort(404)
    return render_template("admin/message.html", message=found, reports=message_log.delivery_reports(db(), found.id),
                           action_form=ActionForm())


@bp.post("/messages/<int:message_id>/retry")
@requires("operator")
def retry(message_id: int) -> Response:
    """Queue a failed message again, now, with a fresh count of attempts (audited)."""
    session = db()
    found = session.get(OutboundMessage, message_id) or abort(404)
    before = audit.snapshot(found, RETRY_FIELDS)
    if outbox.requeue_failed(session, found.id):
        audit.record(session, "retry", "outbound_message", found.id, before, audit.snapshot(found, RETRY_FIELDS))
        session.commit()
        flash(tr("Message queued again; the drain sends it within a minute."), "info")
    else:
        flash(tr("Only failed messages can be retried."), "error")
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
