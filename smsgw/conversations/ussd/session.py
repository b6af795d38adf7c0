"""One USSD hop: load the session, replay the path, render, remember the stack."""

from __future__ import annotations

import copy
import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.conversations.ussd import screens  # noqa: F401  (registers every screen)
from smsgw.conversations.ussd.engine import SCREENS, Ctx, Frame, render_top, split_path, walk
from smsgw.conversations.ussd.screens.common import root_frame
from smsgw.db import rowcount, utcnow
from smsgw.i18n import N_, Text
from smsgw.messaging.encoding import normalize
from smsgw.models import UssdSession
from smsgw.services.contacts import find_contact

log = logging.getLogger(__name__)
APOLOGY = N_("Sorry, something went wrong. Please dial again.")
END_STATUSES = {"Incomplete", "Success", "Failed"}


def apology(lang: str) -> str:
    """The END screen shown when a hop fails, in the caller's language."""
    return "END " + Text(lang)(APOLOGY)


def _load_session(
    db: so.Session, session_id: str, phone: str, service_code: str, network_code: str | None
) -> UssdSession:
    query = sa.select(UssdSession).where(UssdSession.session_id == session_id)
    if db.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    ussd = db.scalar(query)
    if ussd is None:
        ussd = UssdSession(
            session_id=session_id,
            phone=phone,
            service_code=service_code,
            network_code=network_code,
            state={},
        )
        db.add(ussd)
        db.flush()
    return ussd


def _resumable(db: so.Session, ussd: UssdSession, window: dt.timedelta) -> list[Any] | None:
    """Frames of this phone's last dropped session, if it stopped mid-flow recently."""
    previous = db.scalar(
        sa.select(UssdSession)
        .where(
            UssdSession.phone == ussd.phone,
            UssdSession.id != ussd.id,
            UssdSession.updated_at >= utcnow() - window,
            UssdSession.status.in_(("active", "Incomplete")),
        )
        .order_by(UssdSession.updated_at.desc())
        .limit(1)
    )
    if previous is None or previous.state.get("resumed"):
        return None
    frames = previous.state.get("resume")
    if not frames:
        return None
    state = dict(previous.state)
    state["resumed"] = True
    previous.state = state
    return frames


def inside_entry(stack: list[Frame]) -> bool:
    """Whether the caller stands inside a multi-step entry with an answer already given.

    The current screen is a step of an entry (a sale, a commitment, registration, a new
    order) and an earlier step of it was answered. A caller who hung up on a menu, or on
    an entry's first question, lost nothing worth a "Welcome back" detour.
    """
    steps = [frame for frame in stack if SCREENS[frame.screen].resumable]
    return bool(stack) and SCREENS[stack[-1].screen].resumable and len(steps) >= 2


def handle_hop(
    db: so.Session,
    settings: Mapping[str, Any],
    *,
    session_id: str,
    phone: str,
    text: str,
    service_code: str = "",
    network_code: str | None = None,
    lang: str | None = None,
) -> str:
    """Answer one AT request with ``CON ...`` or ``END ...`` (the caller commits).

    ``lang`` (simulators only) shows the screens in that language without storing it.
    """
    ussd = _load_session(db, session_id, phone, service_code, network_code)
    contact = find_contact(db, phone)
    # Work on a copy and assign it back at the end: mutating the loaded dict in place
    # would also change SQLAlchemy's committed copy and the change would not be saved.
    state = copy.deepcopy(ussd.state or {})
    zone = ZoneInfo(settings["SMSGW_TIMEZONE"])
    ctx = Ctx(
        db=db,
        ussd=ussd,
        state=state,
        phone=phone,
        contact=contact,
        settings=settings,
        today=utcnow().astimezone(zone).date(),
    )
    if lang:
        ctx.set_language(lang)
        state.setdefault("root", Frame("main").to_json())
    if "root" not in state:
        frames = _resumable(db, ussd, dt.timedelta(minutes=int(settings["USSD_RESUME_MINUTES"])))
        state["root"] = (
            Frame("resume", {"frames": frames}).to_json() if frames else root_frame(ctx).to_json()
        )
    stack, hint, end = walk(ctx, Frame.from_json(state["root"]), split_path(text))
    body = ("END " + end.text) if end else render_top(ctx, stack, hint)
    ended = body.startswith("END ")
    # Remember a half-done entry so a dropped session can offer to continue it.
    if not ended and inside_entry(stack):
        state["resume"] = [frame.to_json() for frame in stack]
    else:
        state.pop("resume", None)
    ussd.state = copy.deepcopy(state)
    ussd.contact_id = ctx.contact.id if ctx.contact else None
    ussd.last_text = text[:2000]
    ussd.hops += 1
    ussd.updated_at = utcnow()
    if ended and ussd.status == "active":
        # Only an open session ends here: a hop AT repeats after its end event must
        # not overwrite the status that event recorded (Success, Incomplete, Failed).
        ussd.status = "ended"
    return normalize(body, ctx.lang)


def record_end(db: so.Session, fields: Mapping[str, str]) -> None:
    """Store AT's end-of-session notification on the session (unknown ids are created)."""
    session_id = (fields.get("sessionId") or "").strip()[:80]
    if not session_id:
        return
    ussd = db.scalar(sa.select(UssdSession).where(UssdSession.session_id == session_id))
    if ussd is None:
        ussd = UssdSession(
            session_id=session_id, phone=(fields.get("phoneNumber") or "")[:16], state={}
        )
        db.add(ussd)
    status = fields.get("status", "")
    ussd.status = status if status in END_STATUSES else "ended"
    # AT repeats this callback until it gets a 200: the first one says when it ended.
    ussd.ended_at = ussd.ended_at or utcnow()
    ussd.end_input = (fields.get("input") or "")[:2000]
    ussd.error_message = (fields.get("errorMessage") or "")[:2000] or None
    ussd.cost = (fields.get("cost") or "")[:32] or None
    duration = (fields.get("durationInMillis") or "").strip()
    # ASCII digits only (int() refuses some characters isdigit() accepts, such as "²"),
    # and within the 32-bit column.
    ussd.duration_ms = int(duration) if duration.isascii() and duration.isdigit() and len(duration) < 10 else None


SESSION_IDLE = dt.timedelta(minutes=3)


def expire_sessions(db: so.Session, now: dt.datetime) -> int:
    """Mark sessions idle past AT's 180-second limit as Incomplete (AT may never say so).

    Until then an idle session counts as active, so a redial can still resume it.
    """
    return rowcount(db.execute(
        sa.update(UssdSession)
        .where(UssdSession.status == "active", UssdSession.updated_at < now - SESSION_IDLE)
        .values(status="Incomplete", ended_at=now)
    ))
