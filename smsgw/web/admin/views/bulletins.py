"""Bulletins: preview anyone's next one in their language, send a market's now, see past runs."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from smsgw.messaging.encoding import encode_for_sms
from smsgw.models import BulletinRun, Contact, Market, Subscription
from smsgw.phones import InvalidPhone, normalize_phone
from smsgw.services.bulletin_texts import daily_text, weekly_text
from smsgw.services.bulletins import Policy, estimated_cost, run_bulletin
from smsgw.web.admin import audit, bp
from smsgw.web.admin.auth import requires
from smsgw.web.admin.forms import PreviewForm, SendBulletinForm, options
from smsgw.web.admin.i18n import fmt_money, local_today, tr
from smsgw.web.admin.views.common import db
from smsgw.web.database import get_db

RUNS = 30
SUGGESTIONS = 200


def _send_form(session: so.Session) -> SendBulletinForm:
    form = SendBulletinForm()
    form.market.choices = options(
        (m.code, f"{m.name} ({m.code})")
        for m in session.scalars(sa.select(Market).order_by(Market.country, Market.name))
    )
    return form


def _preview(session: so.Session, person: Contact, day: dt.date) -> list[dict[str, object]]:
    """The contact's daily and weekly texts for ``day``, as they would go on the wire."""
    shown: list[dict[str, object]] = []
    for kind, compose in (("daily", daily_text), ("weekly", weekly_text)):
        text = compose(session, person, day, current_app.config)
        encoded = encode_for_sms(text, person.language) if text else None
        shown.append({"kind": kind, "text": encoded.text if encoded else None, "encoded": encoded})
    return shown


@bp.get("/bulletins")
@requires("operator")
def bulletins() -> str:
    """Preview form and result, send-now form, and the history of runs."""
    session = db()
    form = PreviewForm(request.args)
    person, preview, day = None, None, local_today()
    if request.args.get("phone") and form.validate():
        day = form.day.data or day
        try:
            phone = normalize_phone(form.phone.data, current_app.config["SMSGW_DEFAULT_REGION"])
        except InvalidPhone:
            form.phone.errors.append(tr("Not a valid phone number."))
        else:
            person = session.scalar(
                sa.select(Contact).options(so.selectinload(Contact.subscriptions)).where(Contact.phone == phone)
            )
            if person is None:
                form.phone.errors.append(tr("No contact has this number."))
            else:
                preview = _preview(session, person, day)
    runs = session.scalars(
        sa.select(BulletinRun)
        .options(so.joinedload(BulletinRun.market))
        .order_by(BulletinRun.started_at.desc(), BulletinRun.id.desc())
        .limit(RUNS)
    ).all()
    subscribers = session.execute(
        sa.select(Contact.phone, Contact.name, Contact.language)
        .where(sa.exists().where(Subscription.contact_id == Contact.id))
        .order_by(Contact.name).limit(SUGGESTIONS)
    ).all()
    return render_template(
        "admin/bulletins.html", form=form, person=person, preview=preview, day=day, runs=runs,
        subscribers=subscribers, send_form=_send_form(session),
    )


@bp.post("/bulletins/send")
@requires("operator")
def send_bulletin() -> Response:
    """Compose and queue one market's bulletin for its local today (once per day and kind)."""
    session = db()
    form = _send_form(session)
    if not form.validate_on_submit():
        flash(tr("Choose a market and a bulletin."), "error")
        return redirect(url_for("admin.bulletins"))
    # The form only accepts a market code from the catalog.
    market = session.scalars(sa.select(Market).where(Market.code == form.market.data)).one()
    day = dt.datetime.now(ZoneInfo(market.timezone)).date()
    # run_bulletin works in its own transactions (one per batch of subscribers).
    report = run_bulletin(get_db(), form.kind.data, market.code, day, Policy.from_settings(current_app.config))
    if report.skipped_taken:
        flash(tr("This bulletin was already sent for %(market)s today.", market=market.name), "error")
        return redirect(url_for("admin.bulletins"))
    cost = estimated_cost(report.segments, market.currency, current_app.config)
    audit.record(session, "send", "bulletin", market.code, None, {
        "kind": form.kind.data, "day": day, "messages": report.messages, "segments": report.segments,
    })
    session.commit()
    flash(tr(
        "Queued %(messages)s messages (%(segments)s segments, about %(cost)s) for %(market)s.",
        messages=report.messages, segments=report.segments, cost=fmt_money(cost, market.currency), market=market.name,
    ), "info")
    return redirect(url_for("admin.bulletins"))
