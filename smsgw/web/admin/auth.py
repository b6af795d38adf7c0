"""Sign-in, roles and the guard every admin request passes.

Access is decided in one place, ``guard``, from what each view declares with
``@requires(...)`` or ``@public``: a view that declares nothing is refused (fail
closed), so a new page cannot be left open by forgetting a decorator. Failed sign-ins
are counted in the audit table, not in a worker's memory, so the limit holds across
any number of web workers.

The limits are per account (the email typed) and per client address, never global: a
flood of failures locks that account, or that address, and no one else. Behind a
reverse proxy the client address is the proxy's unless SMSGW_PROXY_HOPS says how many
proxies to trust (``create_app`` then applies ProxyFix); without it, every operator
would share the proxy's address and its limit.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import abort, current_app, redirect, request, url_for
from flask_login import LoginManager, UserMixin, current_user
from flask_wtf.csrf import CSRFProtect
from werkzeug.security import check_password_hash, generate_password_hash

from smsgw.db import utcnow
from smsgw.models import AuditEntry, OperatorUser
from smsgw.web.database import get_session

ROLES = ("viewer", "operator", "admin")
RANK = {role: index for index, role in enumerate(ROLES, start=1)}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# Sign-in attempts: at most this many failures in the window per email and per address.
WINDOW = dt.timedelta(minutes=15)
MAX_FAILURES_PER_EMAIL = 5
MAX_FAILURES_PER_ADDRESS = 30
MIN_PASSWORD_LENGTH = 10

login_manager = LoginManager()
csrf = CSRFProtect()
View = TypeVar("View", bound=Callable[..., Any])


class AdminUser(UserMixin):
    """The signed-in operator, detached from any database session."""

    def __init__(self, row: OperatorUser) -> None:
        self.id = row.id
        self.email = row.email
        self.role = row.role
        self.language = row.language
        self.fingerprint = password_fingerprint(row.password_hash)

    def get_id(self) -> str:
        """Id plus a fingerprint of the hash: a password change signs out other sessions."""
        return f"{self.id}:{self.fingerprint}"

    def can(self, role: str) -> bool:
        """True when this operator's role includes ``role``."""
        return RANK[self.role] >= RANK[role]


def password_fingerprint(password_hash: str) -> str:
    """A short digest of the stored hash (not of the password)."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Checked when the email is unknown, so a wrong email takes as long as a wrong password."""
    return generate_password_hash("not a real password, only for timing")


def hash_password(password: str) -> str:
    """The werkzeug hash stored for ``password``."""
    return generate_password_hash(password)


@login_manager.user_loader
def load_user(user_id: str) -> AdminUser | None:
    """The operator behind a session cookie, if still active with the same password."""
    ident, _, fingerprint = user_id.partition(":")
    if not ident.isdigit():
        return None
    row = get_session().get(OperatorUser, int(ident))
    if row is None or not row.active or password_fingerprint(row.password_hash) != fingerprint:
        return None
    return AdminUser(row)


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


def _address() -> str:
    """The client's address: the peer's, or with SMSGW_PROXY_HOPS the one our proxies saw.

    ProxyFix (see ``create_app``) has already put the client in ``remote_addr``, taking
    X-Forwarded-For from the right by the number of trusted hops, so a value the client
    wrote into the header itself is never the one used.
    """
    return f"ip:{request.remote_addr or 'unknown'}"[:80]


def too_many_failures(email: str) -> bool:
    """True when this email, or this client address, failed too often in the last 15 minutes.

    Two separate counts, each scoped to one key; nothing counts failures across all.
    """
    db = get_session()
    since = utcnow() - WINDOW
    failed = sa.select(sa.func.count(AuditEntry.id)).where(
        AuditEntry.action == "signin_failed", AuditEntry.at >= since
    )
    by_email = db.scalar(failed.where(AuditEntry.entity == "signin", AuditEntry.entity_id == _email_key(email)))
    by_address = db.scalar(failed.where(AuditEntry.actor == _address()))
    return by_email >= MAX_FAILURES_PER_EMAIL or by_address >= MAX_FAILURES_PER_ADDRESS


def check_credentials(email: str, password: str) -> OperatorUser | None:
    """The active operator with this email and password; a failure is recorded and committed."""
    db = get_session()
    row = db.scalar(sa.select(OperatorUser).where(OperatorUser.email == email))
    valid = check_password_hash(row.password_hash if row else _dummy_hash(), password)
    if row is not None and valid and row.active:
        return row
    db.add(AuditEntry(
        user_id=None, actor=_address(), action="signin_failed", entity="signin",
        entity_id=_email_key(email),
        # The typed email is kept only when it is a real account: a password typed
        # into the email box by mistake must not end up in the log.
        after={"email": row.email} if row is not None else None,
    ))
    db.commit()
    return None


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: an admin path on this site, never another host."""
    if (target and target.startswith("/admin") and not target.startswith("//") and "\\" not in target
            and target.isprintable()):  # no control characters: a line break would split the Location header
        return target
    return url_for("admin.dashboard")
