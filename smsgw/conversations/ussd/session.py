"""One USSD hop: load the session, replay the path, render, remember the stack."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.dialects import postgresql

from smsgw.conversations.ussd import screens  # noqa: F401  (registers every screen)
from smsgw.conversations.ussd.engine import SCREENS, Ctx, Frame, render_top, split_path, walk
from smsgw.conversations.ussd.screens.common import root_frame
from smsgw.db import rowcount, utcnow
from smsgw.i18n import N_, Text
from smsgw.messaging.encoding import normalize
from smsgw.models import Contact, UssdSession
from smsgw.services import read_cache

log = logging.getLogger(__name__)
APOLOGY = N_("Sorry, something went wrong. Please dial again.")
END_STATUSES = {"Incomplete", "Success", "Failed"}


def apology(lang: str) -> str:
    """The END screen shown when a hop fails, in the caller's language."""
    return "END " + Text(lang)(APOLOGY)


# Built once: building a statement costs about as much as running it. A hop reads its
# session row, the caller (``contacts.find_contact``) and the read cache's versions in one
# round trip; the row is locked on PostgreSQL so that two copies of one request (AT
# repeats) run one after the other.
_HOP = (
    sa.select(UssdSession, Contact, *read_cache.token_columns())
    .outerjoin(Contact, Contact.phone == sa.bindparam("phone"))
    .where(UssdSession.session_id == sa.bindparam("session_id"))
)
_HOP_LOCKED = _HOP.with_for_update(of=UssdSession)
# A session's first hop: an outer join from a one-row table gives a row even for a caller
# we do not know yet.
_CALLER = (
    sa.select(Contact, *read_cache.token_columns())
    .select_from(sa.select(sa.literal(1).label("one")).subquery())
    .outerjoin(Contact, Contact.phone == sa.bindparam("phone"))
)
_SESSIONS = cast("sa.Table", UssdSession.__table__)


def _load(
    db: so.Session, session_id: str, phone: str, service_code: str, network_code: str | None
) -> tuple[UssdSession, bool, Contact | None, Sequence[Any]]:
    """The session (new on SQLite: not stored yet), whether it is new, the caller, the cache's versions."""
    postgres = db.get_bind().dialect.name == "postgresql"
    keys = {"session_id": session_id, "phone": phone}
    row = db.execute(_HOP_LOCKED if postgres else _HOP, keys).first()
    if row is None and postgres:
        # AT may send a session's first request twice at once. The row lock orders two
        # copies only once the row exists: insert it now (the second copy waits for the
        # first to commit, then finds and locks it) instead of with the hop's outcome,
        # where the second insert would fail and its caller get an apology. SQLite's
        # writers take the database lock at BEGIN, so they are in order already.
        db.execute(postgresql.insert(_SESSIONS).values(
            session_id=session_id, phone=phone, service_code=service_code, network_code=network_code,
            state={}, hops=0, status="active",
        ).on_conflict_do_nothing(index_elements=["session_id"]))
        row = db.execute(_HOP_LOCKED, keys).one()
    if row is not None:
        return row[0], False, row[1], tuple(row[2:])
    # Written with the hop's outcome by ``_save``, not now: one statement less per session.
    ussd = UssdSession(
        session_id=session_id, phone=phone, service_code=service_code, network_code=network_code,
        state={}, hops=0, status="active",
    )
    found = db.execute(_CALLER, {"phone": phone}).one()
    return ussd, True, found[0], tuple(found[1:])


def _save(db: so.Session, ussd: UssdSession, new: bool, values: dict[str, Any]) -> None:
    """Store the hop's outcome on the session row (inserted on the session's first hop).

    A core statement: the ORM's unit of work costs more than the rest of a menu hop.
    """
    if new:
        db.execute(sa.insert(_SESSIONS).values(
            session_id=ussd.session_id, phone=ussd.phone, service_code=ussd.service_code,
            network_code=ussd.network_code, **values,
        ))
    else:
        db.execute(sa.update(_SESSIONS).where(_SESSIONS.c.id == ussd.id).values(**values))


def _resumable(db: so.Session, ussd: UssdSession, window: dt.timedelta) -> list[Any] | None:
    """Frames of this phone's last dropped session, if it stopped mid-flow recently."""
    previous = db.scalar(
        sa.select(UssdSession)
        .where(
            UssdSession.phone == ussd.phone,
            UssdSession.session_id != ussd.session_id,
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


def _copy(state: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a session's JSON state (through JSON: several times faster than deepcopy)."""
    return json.loads(json.dumps(state))


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
    ussd, new, contact, versions = _load(db, session_id, phone, service_code, network_code)
    # Work on a copy: the loaded dict is the ORM's record of what the row holds.
    state = _copy(ussd.state or {})
    zone = ZoneInfo(settings["SMSGW_TIMEZONE"])
    ctx = Ctx(
        db=db,
        ussd=ussd,
        state=state,
        phone=phone,
        contact=contact,
        settings=settings,
        today=utcnow().astimezone(zone).date(),
        reads=read_cache.reads(db, versions),
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
    values = {
        "state": state,
        "contact_id": ctx.contact.id if ctx.contact else None,
        "last_text": text[:2000],
        "hops": ussd.hops + 1,
        "updated_at": utcnow(),
    }
    if ended and ussd.status == "active":
        # Only an open session ends here: a hop AT repeats after its end event must
        # not overwrite the status that event recorded (Success, Incomplete, Failed).
        values["status"] = "ended"
    _save(db, ussd, new, values)
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
