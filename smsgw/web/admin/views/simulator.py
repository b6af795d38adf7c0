"""The phone simulator: USSD and SMS through the same code as the Africa's Talking webhooks.

By default it plays as a number of the reserved range (``services.simulation``): a
sandbox contact whose messages never reach the gateway and stay out of analytics. Any
other number is a real person: playing as them needs two ticks (the choice and its
consequence), and is audited as such.

USSD: the session id and the path of inputs so far travel in hidden fields, so the page
works without JavaScript; every hop calls ``handle_hop`` exactly as ``POST /at/ussd``
does. SMS: the text goes through ``receive`` as ``POST /at/sms`` does, and the reply
shown is the outbox row ``reply:<inbound id>``; like any reply it is sent by the drain.
"""
from __future__ import annotations

import logging
import uuid
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app, render_template, request

from smsgw.conversations.sms.intake import receive
from smsgw.conversations.ussd.session import apology, handle_hop, record_end
from smsgw.models import Contact, InboundMessage, OutboundMessage
from smsgw.phones import InvalidPhone, is_simulator_number, mask_phone, normalize_phone
from smsgw.services import simulation
from smsgw.web.admin import audit, bp
from smsgw.web.admin.auth import requires
from smsgw.web.admin.forms import SmsForm, UssdForm
from smsgw.web.admin.i18n import tr
from smsgw.web.admin.views.common import db

log = logging.getLogger(__name__)
SERVICE_CODE = "*384#"
THREAD = 12


def _default_phone() -> str:
    return simulation.default_phone(current_app.config["SMSGW_ALLOWED_PREFIXES"])


def _who(session: so.Session, form: UssdForm | SmsForm, phone: str) -> bool | None:
    """Ready the number to play: True for a real contact (both boxes ticked), False for
    the sandbox, None (with the field's error) when a real number lacks the two ticks."""
    if is_simulator_number(phone):
        simulation.simulated_contact(session, phone)
        return False
    if form.as_real.data and form.confirm_real.data:
        return True
    form.phone.errors.append(tr("This number is not in the simulator's range: it may be a real farmer. "
                                "Tick both boxes to play as them, or use %(phone)s.", phone=_default_phone()))
    return None


def _thread(session: so.Session, phone: str) -> list[tuple[str, Any]]:
    """The phone's latest SMS both ways, oldest first, as a chat shows them."""
    inbound = session.scalars(
        sa.select(InboundMessage)
        .where(InboundMessage.from_phone == phone)
        .order_by(InboundMessage.id.desc())
        .limit(THREAD)
    ).all()
    outbound = session.scalars(
        sa.select(OutboundMessage)
        .where(OutboundMessage.to_phone == phone)
        .order_by(OutboundMessage.id.desc())
        .limit(THREAD)
    ).all()
    items = [("in", m.received_at, m) for m in inbound] + [("out", m.created_at, m) for m in outbound]
    return [(way, message) for way, _, message in sorted(items, key=lambda item: item[1])][-THREAD:]


def _render(mode: str, phone: str, **values: Any) -> str:
    session = db()
    contacts = session.execute(sa.select(Contact.phone, Contact.name, Contact.language)
                               .order_by(Contact.simulated.desc(), Contact.name).limit(200)).all()
    values.setdefault("ussd_form", UssdForm(phone=phone, formdata=None))
    values.setdefault("sms_form", SmsForm(phone=phone, formdata=None))
    thread = []
    if mode == "sms":
        try:
            thread = _thread(session, normalize_phone(phone, current_app.config["SMSGW_DEFAULT_REGION"]))
        except InvalidPhone:
            thread = []
    return render_template("admin/simulator.html", mode=mode, phone=phone, contacts=contacts, thread=thread,
                           sandbox=is_simulator_number(phone), **values)


@bp.get("/simulator")
@requires("operator")
def simulator() -> str:
    """The idle phone, ready to dial or to write an SMS."""
    mode = "sms" if request.args.get("mode") == "sms" else "ussd"
    return _render(mode, request.args.get("phone") or _default_phone())


@bp.post("/simulator/ussd")
@requires("operator")
def simulator_ussd() -> str:
    """Dial, answer or hang up; the answer is appended to the path as AT would."""
    form = UssdForm()
    if not form.validate_on_submit():
        return _render("ussd", form.phone.data or _default_phone(), ussd_form=form)
    config = current_app.config
    try:
        phone = normalize_phone(form.phone.data, config["SMSGW_DEFAULT_REGION"])
    except InvalidPhone:
        form.phone.errors.append(tr("Not a valid phone number."))
        return _render("ussd", form.phone.data, ussd_form=form)
    session = db()
    real = _who(session, form, phone)
    if real is None:
        return _render("ussd", form.phone.data, ussd_form=form)
    if form.hangup.data:
        if form.session_id.data:
            record_end(session, {"sessionId": form.session_id.data, "phoneNumber": phone, "status": "Success"})
            session.commit()
        return _render(
            "ussd",
            phone,
            ussd_form=UssdForm(phone=phone, lang=form.lang.data, as_real=real, confirm_real=real, formdata=None),
        )
    if form.dial.data or not form.session_id.data:
        session_id, path = f"sim-{uuid.uuid4().hex[:16]}", ""
        audit.record(session, "simulate", "ussd", session_id, None,
                     {"phone": mask_phone(phone), "lang": form.lang.data or None, "real_contact": real})
    else:
        session_id = form.session_id.data
        answer = (request.form.get("key") or form.reply.data or "").strip()
        path = f"{form.path.data}*{answer}" if form.path.data else answer
    lang = form.lang.data or None
    try:
        body = handle_hop(
            session, config, session_id=session_id, phone=phone, text=path, service_code=SERVICE_CODE, lang=lang
        )
        session.commit()
    except Exception:
        session.rollback()
        log.exception("simulated USSD hop failed: session=%s phone=%s", session_id, mask_phone(phone))
        body = apology(lang or config["SMSGW_DEFAULT_LANG"])
    ended = body.startswith("END ")
    next_form = UssdForm(
        phone=phone,
        lang=form.lang.data,
        session_id="" if ended else session_id,
        path="" if ended else path,
        as_real=real,
        confirm_real=real,
        formdata=None,
    )
    return _render("ussd", phone, ussd_form=next_form, screen=body[4:], ended=ended, path=path)


@bp.post("/simulator/sms")
@requires("operator")
def simulator_sms() -> str:
    """Send one SMS from the phone; its reply is read from the outbox."""
    form = SmsForm()
    if not form.validate_on_submit():
        return _render("sms", form.phone.data or _default_phone(), sms_form=form)
    config = current_app.config
    session = db()
    try:
        phone = normalize_phone(form.phone.data, config["SMSGW_DEFAULT_REGION"])
    except InvalidPhone:
        form.phone.errors.append(tr("Not a valid phone number."))
        return _render("sms", form.phone.data, sms_form=form)
    real = _who(session, form, phone)
    if real is None:
        return _render("sms", form.phone.data, sms_form=form)
    message = receive(
        session, config, {"from": phone, "text": form.text.data, "id": f"sim-{uuid.uuid4().hex}", "to": "simulator"}
    )
    reply = None
    if message is not None:
        message.simulated = not real
        audit.record(session, "simulate", "sms", message.id, None, {"phone": mask_phone(phone), "real_contact": real})
        reply = session.scalar(
            sa.select(OutboundMessage).where(OutboundMessage.idempotency_key == f"reply:{message.id}")
        )
    session.commit()
    return _render(
        "sms",
        phone,
        sms_form=SmsForm(phone=phone, as_real=real, confirm_real=real, formdata=None),
        reply=reply,
        sent=message,
        no_reply=message is not None and reply is None,
    )
