"""Sign-in, sessions, roles and the guard every admin request passes.

Access is decided in one place, ``guard``, from what each view declares with
``@requires(...)`` or ``@public``: a view that declares nothing is refused (fail
closed), so a new page cannot be left open by forgetting a decorator.

Sessions live in the database (``services.operator_sessions``): the cookie carries a
random token only, so sign-out, a new password or "sign out everywhere" ends every
copy of it, and idle and absolute time-outs hold. Failed sign-ins are throttled in the
database too (``services.signin_throttle``), per account and address and per address,
with a doubling wait instead of a lock. Behind a reverse proxy the client address is
the proxy's unless SMSGW_PROXY_HOPS says how many proxies to trust (``create_app`` then
applies ProxyFix); without it, every operator would share the proxy's address.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import abort, current_app, redirect, request, url_for
from flask_login import LoginManager, UserMixin, current_user
from flask_wtf.csrf import CSRFProtect
from werkzeug.security import check_password_hash, generate_password_hash

from smsgw.db import error_line
from smsgw.models import AuditEntry, OperatorUser
from smsgw.services import operator_sessions, signin_throttle
from smsgw.services.passwords import accepted_step
from smsgw.web.database import get_db, get_session

ROLES = ("viewer", "operator", "admin")
RANK = {role: index for index, role in enumerate(ROLES, start=1)}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

login_manager = LoginManager()
csrf = CSRFProtect()
View = TypeVar("View", bound=Callable[..., Any])
log = logging.getLogger(__name__)


class AdminUser(UserMixin):
    """The signed-in operator, detached from any database session."""

    def __init__(self, row: OperatorUser, token: str) -> None:
        self.id = row.id
        self.email = row.email
        self.role = row.role
        self.language = row.language
        self.two_factor = row.totp_secret is not None
        self.token = token

    def get_id(self) -> str:
        """The session's token: what the cookie carries, looked up on every request."""
        return self.token

    def can(self, role: str) -> bool:
        """True when this operator's role includes ``role``."""
        return RANK[self.role] >= RANK[role]


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Checked when the email is unknown, so a wrong email takes as long as a wrong password."""
    return generate_password_hash("not a real password, only for timing")


def hash_password(password: str) -> str:
    """The werkzeug hash stored for ``password``."""
    return generate_password_hash(password)


def session_limits() -> operator_sessions.SessionLimits:
    """The app's idle and absolute session limits."""
    return operator_sessions.SessionLimits.from_settings(current_app.config)


@login_manager.user_loader
def load_user(token: str) -> AdminUser | None:
    """The operator behind a session cookie, while the session is live.

    Using a page restarts the idle time, written at most once a minute by a short
    transaction of its own, before the request's session opens (a GET's only reads). The
    write is best effort: a busy database delays the idle clock, never the page.
    """
    database = get_db()
    with database.session(read_only=True) as reader:
        found = operator_sessions.find_session(reader, token, session_limits())
        if found is None:
            return None
        live, row = found
        user, touch = AdminUser(row, token), operator_sessions.needs_touch(live)
    if touch:
        try:
            with database.session() as writer:
                operator_sessions.touch(writer, live.id)
        except sa.exc.OperationalError as exc:
            log.info("session %s not touched: %s", live.id, error_line(exc))
    return user


def start(row: OperatorUser) -> AdminUser:
    """A new server-side session for ``row`` from this request's browser (caller commits)."""
    token = operator_sessions.start_session(get_session(), row, client_address(), request.user_agent.string or "")
    return AdminUser(row, token)


def requires(role: str, write: str | None = None) -> Callable[[View], View]:
    """Declare the role a view needs to read, and to write (default: at least operator)."""
    if role not in RANK or (write is not None and write not in RANK):
        raise ValueError(f"unknown role {role!r}/{write!r}")
    write_role = write or max(role, "operator", key=RANK.__getitem__)

    def mark(view: View) -> View:
        view.admin_role = role  # type: ignore[attr-defined]
        view.admin_write_role = write_role  # type: ignore[attr-defined]
        return view

    return mark


def public(view: View) -> View:
    """Declare a view open without sign-in (the sign-in page only)."""
    view.admin_public = True  # type: ignore[attr-defined]
    return view


def guard() -> Any:
    """Before every admin request: signed in, role allowed, CSRF token valid on writes."""
    endpoint = request.endpoint
    if endpoint is None or endpoint == "admin.static":
        return None
    view = current_app.view_functions.get(endpoint)
    writing = request.method not in SAFE_METHODS
    if getattr(view, "admin_public", False):
        if writing:
            csrf.protect()
        return None
    if not current_user.is_authenticated:
        if writing:
            abort(401)
        return redirect(url_for("admin.signin", next=request.full_path.rstrip("?")))
    needed = getattr(view, "admin_write_role" if writing else "admin_role", None)
    if needed is None or not current_user.can(needed):
        abort(403)
    if writing:
        csrf.protect()
    return None


def _email_key(email: str) -> str:
    return "sha256:" + hashlib.sha256(email.encode()).hexdigest()[:32]


def client_address() -> str:
    """The client's address: the peer's, or with SMSGW_PROXY_HOPS the one our proxies saw.

    ProxyFix (see ``create_app``) has already put the client in ``remote_addr``, taking
    X-Forwarded-For from the right by the number of trusted hops, so a value the client
    wrote into the header itself is never the one used.
    """
    return (request.remote_addr or "unknown")[:80]


@dataclass(frozen=True)
class SignInOutcome:
    """What a sign-in step came to: ``ok``, ``code`` (password right, TOTP next),
    ``wrong`` or ``wait`` (throttled for ``wait_seconds``)."""

    status: str
    user: OperatorUser | None = None
    wait_seconds: int = 0


def _record_failure(email: str, row: OperatorUser | None, action: str) -> None:
    db = get_session()
    db.add(AuditEntry(
        user_id=None, actor=f"ip:{client_address()}", action=action, entity="signin",
        entity_id=_email_key(email),
        # The typed email is kept only when it is a real account: a password typed
        # into the email box by mistake must not end up in the log.
        after={"email": row.email} if row is not None else None,
    ))
    db.commit()


def check_password(email: str, password: str) -> SignInOutcome:
    """First step: the password, charged to the throttles before it is checked.

    A right password for an account with a second factor leaves the charge in place
    until the code is right too, so the password cannot be used to reset the count
    between guesses of the code.
    """
    db = get_session()
    row = db.scalar(sa.select(OperatorUser).where(OperatorUser.email == email))
    verdict = signin_throttle.charge(db, email, client_address(), account=row.email if row else "")
    db.commit()
    if not verdict.allowed:
        return SignInOutcome("wait", wait_seconds=verdict.wait_seconds)
    valid = check_password_hash(row.password_hash if row else _dummy_hash(), password)
    if row is not None and valid and row.active:
        if row.totp_secret:
            return SignInOutcome("code", row)
        signin_throttle.forgive(db, email, client_address())
        db.commit()
        return SignInOutcome("ok", row)
    _record_failure(email, row, "signin_failed")
    return SignInOutcome("wrong")


def check_code(user_id: int, code: str) -> SignInOutcome:
    """Second step: the authenticator code of the account whose password was right."""
    db = get_session()
    row = db.get(OperatorUser, user_id)
    if row is None or not row.active or not row.totp_secret:
        return SignInOutcome("wrong")
    verdict = signin_throttle.charge(db, row.email, client_address(), account=row.email)
    db.commit()
    if not verdict.allowed:
        return SignInOutcome("wait", wait_seconds=verdict.wait_seconds)
    step = accepted_step(row.totp_secret, code, row.totp_last_step)
    if step is None:
        _record_failure(row.email, row, "signin_code_failed")
        return SignInOutcome("wrong")
    row.totp_last_step = step
    signin_throttle.forgive(db, row.email, client_address(), attempts=2)
    db.commit()
    return SignInOutcome("ok", row)


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: an admin path on this site, never another host."""
    if (target and target.startswith("/admin") and not target.startswith("//") and "\\" not in target
            and target.isprintable()):  # no control characters: a line break would split the Location header
        return target
    return url_for("admin.dashboard")
