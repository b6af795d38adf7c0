"""The operators' web admin: one blueprint under /admin, its views split by area.

Every request passes ``auth.guard`` (signed in, role allowed, CSRF token on writes).
Pages are server-rendered, work without JavaScript and load nothing from elsewhere
(the Content-Security-Policy below says so to the browser too).
"""
from __future__ import annotations

import logging
import re
from typing import Any

from flask import Blueprint, Flask, Response, abort, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError

from smsgw.web.admin import i18n
from smsgw.web.admin.auth import csrf, guard, login_manager
from smsgw.web.admin.i18n import tr_l
from smsgw.web.admin.labels import label

bp = Blueprint(
    "admin",
    __name__,
    url_prefix="/admin",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

# The largest id the database's integer columns hold (PostgreSQL INTEGER; SQLite goes further).
MAX_ID = 2**31 - 1
# C0 controls, DEL and C1 controls: never in a query value, a path or a header-bound value.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# In form bodies free text may hold tab and line breaks, nothing else.
FORM_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def refuse_hostile() -> None:
    """Before every admin request (and before the sign-in check): 400 for control characters
    in the path, a query argument or a form value, 404 for an id no row can have.

    Keeps NUL bytes away from the database (PostgreSQL refuses them in text), line breaks
    away from headers (``next=``) and ids beyond the integer columns' range away from
    queries (PostgreSQL raises on them): hostile URLs get 400/404, never a 500.
    """
    if CONTROL.search(request.path):
        abort(404)
    for key, value in request.args.items(multi=True):
        if CONTROL.search(key) or CONTROL.search(value):
            abort(400)
    if request.method not in ("GET", "HEAD", "OPTIONS") and request.mimetype in (
        "application/x-www-form-urlencoded", "multipart/form-data"
    ):
        for key, value in request.form.items(multi=True):
            if CONTROL.search(key) or FORM_CONTROL.search(value) or (key == "next" and CONTROL.search(value)):
                abort(400)
    for value in (request.view_args or {}).values():
        if isinstance(value, int) and not isinstance(value, bool) and not -MAX_ID - 1 <= value <= MAX_ID:
            abort(404)
        if isinstance(value, str) and CONTROL.search(value):
            abort(404)


bp.before_request(refuse_hostile)
bp.before_request(guard)

# (endpoint, label, role needed to see it): the menu shows what the operator may open.
NAV = [
    ("admin.dashboard", tr_l("Dashboard"), "viewer"),
    ("admin.catalog", tr_l("Catalog"), "viewer"),
    ("admin.prices", tr_l("Prices"), "viewer"),
    ("admin.people", tr_l("People"), "operator"),
    ("admin.orders", tr_l("Orders"), "operator"),
    ("admin.messages", tr_l("Messages"), "operator"),
    ("admin.bulletins", tr_l("Bulletins"), "operator"),
    ("admin.simulator", tr_l("Phone simulator"), "operator"),
    ("admin.analytics", tr_l("Analytics"), "viewer"),
    ("admin.storage_page", tr_l("Store or sell"), "viewer"),
    ("admin.users", tr_l("Users"), "admin"),
    ("admin.audit_log", tr_l("Audit log"), "admin"),
    ("admin.throttles", tr_l("Sign-in throttles"), "admin"),
    ("admin.account", tr_l("My account"), "viewer"),
]
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


@bp.context_processor
def layout() -> dict[str, Any]:
    """What every admin page's frame needs: the menu and the language form."""
    from smsgw.web.admin.forms import LanguageForm

    menu = []
    if current_user.is_authenticated:
        menu = [(endpoint, label) for endpoint, label, role in NAV if current_user.can(role)]
    language_form = LanguageForm(language=i18n.current_language()) if current_user.is_authenticated else None
    return {"menu": menu, "language_form": language_form, "lang": i18n.current_language()}


@bp.after_request
def headers(response: Response) -> Response:
    """No framing, no sniffing, nothing from other origins; pages with people's data not cached."""
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "admin.static" and "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"
    return response


def _error(code: int, message: Any) -> tuple[str, int]:
    return render_template("admin/error.html", code=code, message=message), code


@bp.errorhandler(CSRFError)
def csrf_error(_exc: CSRFError) -> tuple[str, int]:
    """A form without a valid token: expired, or sent from another site."""
    return _error(400, tr_l("This form has expired or did not come from this site. Reload the page and try again."))


@bp.errorhandler(400)
def bad_request(_exc: Exception) -> tuple[str, int]:
    """A request the admin cannot read (control characters in it, a malformed form)."""
    return _error(400, tr_l("This request could not be read. Go back, check what was typed and try again."))


@bp.errorhandler(401)
def unauthorized(_exc: Exception) -> tuple[str, int]:
    """A write without a session."""
    return _error(401, tr_l("Please sign in."))


@bp.errorhandler(403)
def forbidden(_exc: Exception) -> tuple[str, int]:
    """Signed in, but this role may not do that."""
    return _error(403, tr_l("Your role does not allow this page or action."))


@bp.errorhandler(404)
def not_found(_exc: Exception) -> tuple[str, int]:
    """An admin page for something that does not exist."""
    return _error(404, tr_l("Not found."))


class MaskPhones(logging.Filter):
    """Masks phone numbers in request lines the development server logs (search, filters)."""

    PHONE = re.compile(r"(%2B|\+)?\d{9,15}")

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message with every phone-like number masked."""
        message = record.getMessage()
        masked = self.PHONE.sub(lambda m: m.group(0)[:4] + "***" + m.group(0)[-2:], message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


def init_app(app: Flask) -> None:
    """Wire sign-in, CSRF, the admin's translations and the blueprint into ``app``."""
    from smsgw.web.admin import views  # noqa: F401  (registers every page on bp)

    i18n.init_app(app)
    # A global, not a context value, so imported macros see it too.
    app.jinja_env.globals["label"] = label
    login_manager.init_app(app)
    login_manager.login_view = "admin.signin"
    login_manager.session_protection = "basic"
    csrf.init_app(app)
    app.register_blueprint(bp)
    werkzeug_log = logging.getLogger("werkzeug")
    if not any(isinstance(f, MaskPhones) for f in werkzeug_log.filters):
        werkzeug_log.addFilter(MaskPhones())
    # The site's root leads operators to the admin (the webhooks live under /at).
    app.add_url_rule("/", "home", lambda: redirect(url_for("admin.dashboard")))
