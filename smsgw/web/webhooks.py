"""Africa's Talking callbacks: USSD hops and end events, inbound SMS, delivery reports.

Each handler parses the form, calls one service, commits, and answers quickly. No
handler calls the SMS gateway: replies are written to the outbox.
"""

from __future__ import annotations

import concurrent.futures
import hmac
import logging
import threading
from typing import Any

import sqlalchemy.orm as so
from flask import Blueprint, Response, abort, current_app, request

from smsgw.conversations.sms.intake import receive
from smsgw.conversations.ussd.session import apology, handle_hop, record_end
from smsgw.db import Database
from smsgw.messaging.delivery import record_delivery_report
from smsgw.phones import InvalidPhone, mask_phone, normalize_phone
from smsgw.web.database import get_db, get_session

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__, url_prefix="/at")
# AT's callbacks are a few hundred bytes; the app-wide limit is sized for admin uploads.
MAX_CALLBACK_BYTES = 64 * 1024
# USSD hops run here so that a hop stuck on the database cannot hold its request past
# AT's time-out; a handful per process, as stuck hops wait on the database anyway.
_hop_workers = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="ussd-hop")


@bp.before_request
def check_token() -> None:
    """Refuse callbacks without WEBHOOK_TOKEN (when set, constant-time), then bodies over the limit."""
    request.max_content_length = MAX_CALLBACK_BYTES
    expected = current_app.config["WEBHOOK_TOKEN"]
    # Compared as bytes: compare_digest refuses str with non-ASCII characters (a 500).
    given = request.args.get("token", "").encode()
    if expected and not hmac.compare_digest(given, str(expected).encode()):
        abort(403)
    _read_body_within_limit()


def _read_body_within_limit() -> None:
    """Read the whole body now, at most MAX_CALLBACK_BYTES, or answer 413.

    A chunked body has no Content-Length, and Werkzeug's form parser stops silently at
    ``max_content_length``: a cut body would be stored as if whole. So one byte more
    than the limit is allowed through the stream, and reaching it is a 413. The body is
    cached, and ``request.form`` is then parsed from that cache, never from the socket.
    """
    # A Content-Length over this is refused before reading (Werkzeug raises the 413).
    request.max_content_length = MAX_CALLBACK_BYTES + 1
    body = request.get_data(cache=True)
    request.max_content_length = MAX_CALLBACK_BYTES
    if len(body) > MAX_CALLBACK_BYTES:
        abort(413)


def _form() -> dict[str, str]:
    """The posted fields without NUL characters, which PostgreSQL text cannot hold."""
    return {key: value.replace("\x00", "") for key, value in request.form.items()}


def _plain(body: str) -> Response:
    return Response(body, status=200, mimetype="text/plain")


@bp.post("/ussd")
def ussd() -> Response:
    """One USSD hop: answer ``CON ...`` or ``END ...`` as text/plain, always 200, in time.

    The hop runs on a worker thread with its own session. If it has not answered within
    USSD_HOP_SECONDS (a database that hangs, a write lock held too long) the caller gets
    the apology at once, and the late hop is rolled back, so no effect happens behind a
    screen the farmer never saw.
    """
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
    hop = {
        "session_id": session_id,
        "phone": phone,
        "text": form.get("text", "")[:500],
        "service_code": (form.get("serviceCode") or "")[:32],
        "network_code": (form.get("networkCode") or "")[:16] or None,
    }
    config = dict(current_app.config)
    abandoned = threading.Event()
    answer = _hop_workers.submit(_run_hop, get_db(), config, hop, abandoned)
    try:
        return _plain(answer.result(timeout=float(config["USSD_HOP_SECONDS"])))
    except concurrent.futures.TimeoutError:
        abandoned.set()
        log.warning(
            "USSD hop not answered within %s s (database slow or away): apology sent; session=%s phone=%s",
            config["USSD_HOP_SECONDS"], session_id, mask_phone(phone),
        )
        return _plain(apology(lang))


def _run_hop(database: Database, config: dict[str, Any], hop: dict[str, Any], abandoned: threading.Event) -> str:
    """Play one hop in a session of its own; committed only if the caller still waits."""
    session = database.sessionmaker()
    try:
        body = handle_hop(session, config, **hop)
        if abandoned.is_set():
            session.rollback()
        else:
            session.commit()
        return body
    except Exception:  # any failure is an apology on the screen, never a 500
        session.rollback()
        log.exception("USSD hop failed: session=%s phone=%s", hop["session_id"], mask_phone(hop["phone"]))
        return apology(_caller_language(session, hop["phone"], config["SMSGW_DEFAULT_LANG"]))
    finally:
        session.close()


def _caller_language(session: so.Session, phone: str, default: str) -> str:
    """The caller's stored language, read in a fresh transaction after a failure."""
    from smsgw.services.contacts import find_contact

    try:
        contact = find_contact(session, phone)
        return contact.language if contact else default
    except Exception:  # noqa: BLE001  (the apology must go out even if this read fails too)
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

    The 200 is sent only after the raw message is committed: if the database is down
    AT gets an error and retries, so no message is lost. A failure after that commit
    (a handler bug) is recorded on the message, apologised for, and answered 200.
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
