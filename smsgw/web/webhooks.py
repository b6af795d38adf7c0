"""Africa's Talking callbacks: USSD hops and end events, inbound SMS, delivery reports.

Each handler parses the form, calls one service, commits, and answers quickly. No
handler calls the SMS gateway: replies are written to the outbox.
"""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, Response, abort, current_app, request

from smsgw.conversations.sms.intake import receive
from smsgw.conversations.ussd.session import apology, handle_hop, record_end
from smsgw.messaging.delivery import record_delivery_report
from smsgw.phones import InvalidPhone, mask_phone, normalize_phone
from smsgw.web.database import get_session

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__, url_prefix="/at")
# AT's callbacks are a few hundred bytes; the app-wide limit is sized for admin uploads.
MAX_CALLBACK_BYTES = 64 * 1024


@bp.before_request
def check_token() -> None:
    """With WEBHOOK_TOKEN set, refuse callbacks that do not carry it (constant-time)."""
    request.max_content_length = MAX_CALLBACK_BYTES
    expected = current_app.config["WEBHOOK_TOKEN"]
    # Compared as bytes: compare_digest refuses str with non-ASCII characters (a 500).
    given = request.args.get("token", "").encode()
    if expected and not hmac.compare_digest(given, str(expected).encode()):
        abort(403)


def _form() -> dict[str, str]:
    """The posted fields without NUL characters, which PostgreSQL text cannot hold."""
    return {key: value.replace("\x00", "") for key, value in request.form.items()}


def _plain(body: str) -> Response:
    return Response(body, status=200, mimetype="text/plain")


@bp.post("/ussd")
def ussd() -> Response:
    """One USSD hop: answer ``CON ...`` or ``END ...`` as text/plain, always 200."""
    form = _form()
    session_id = (form.get("sessionId") or "").strip()[:80]
    lang = current_app.config["SMSGW_DEFAULT_LANG"]
    try:
        phone = normalize_phone(
            form.get("phoneNumber", ""), current_app.config["SMSGW_DEFAULT_REGION"]
        )
    except InvalidPhone:
        return _plain(apology(lang))
    if not session_id:
        return _plain(apology(lang))
    db = get_session()
    try:
        body = handle_hop(
            db,
            current_app.config,
            session_id=session_id,
            phone=phone,
            text=form.get("text", "")[:500],
            service_code=(form.get("serviceCode") or "")[:32],
            network_code=(form.get("networkCode") or "")[:16] or None,
        )
        db.commit()
        return _plain(body)
    except Exception:
        db.rollback()
        log.exception("USSD hop failed: session=%s phone=%s", session_id, mask_phone(phone))
        return _plain(apology(_caller_language(phone, lang)))


def _caller_language(phone: str, default: str) -> str:
    """The caller's stored language, read in a fresh transaction after a failure."""
    from smsgw.services.contacts import find_contact

    try:
        contact = find_contact(get_session(), phone)
        return contact.language if contact else default
    except Exception:
        return default


@bp.post("/ussd/events")
def ussd_events() -> Response:
    """AT's end-of-session notification: stored on the session, 200 even when unknown."""
    db = get_session()
    record_end(db, _form())
    db.commit()
    return _plain("OK")


@bp.post("/sms")
def sms() -> Response:
    """An inbound SMS: stored once per id and its reply queued, then 200.

    The 200 is sent only after the commit: if the database is down AT gets an error
    and retries, so no message is lost.
    """
    db = get_session()
    receive(db, current_app.config, _form())
    db.commit()
    return _plain("OK")


@bp.post("/delivery")
def delivery() -> Response:
    """A delivery report: stored, and the message's status moved forward; 200 even when unknown."""
    db = get_session()
    record_delivery_report(db, _form())
    db.commit()
    return _plain("OK")
