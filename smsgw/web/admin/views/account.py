"""An operator's own account: live sessions, password, and the authenticator app."""
from __future__ import annotations

from flask import flash, redirect, render_template, session, url_for
from flask_login import current_user, login_user
from werkzeug.security import check_password_hash
from werkzeug.wrappers import Response

from smsgw.models import OperatorUser
from smsgw.services import operator_sessions
from smsgw.services.passwords import accepted_step, new_totp_secret, provisioning_uri
from smsgw.web.admin import audit, bp
from smsgw.web.admin.auth import hash_password, requires, session_limits, start
from smsgw.web.admin.forms import CodeForm, ConfirmForm, OwnPasswordForm
from smsgw.web.admin.i18n import tr
from smsgw.web.admin.views.common import db


def _me() -> OperatorUser:
    row = db().get(OperatorUser, current_user.id)
    assert row is not None  # the guard has just loaded this operator
    return row


def _page(password_form: OwnPasswordForm | None = None, code_form: CodeForm | None = None) -> str:
    row = _me()
    # A secret being set up lives in the cookie session until a code confirms it.
    pending = session.get("totp_pending") if row.totp_secret is None else None
    return render_template(
        "admin/account.html", me=row,
        sessions=operator_sessions.live_sessions(db(), row.id, session_limits()),
        current_token_hash=operator_sessions.token_digest(current_user.get_id()),
        password_form=password_form or _password_form(row), code_form=code_form or CodeForm(),
        confirm_form=ConfirmForm(), pending_secret=pending,
        pending_uri=provisioning_uri(pending, row.email) if pending else None,
    )


def _password_form(row: OperatorUser) -> OwnPasswordForm:
    form = OwnPasswordForm()
    form.account_email = row.email  # read by StrongPassword
    return form


@bp.get("/account")
@requires("viewer", write="viewer")
def account() -> str:
    """Where the operator is signed in, the password form and the second factor."""
    return _page()


@bp.post("/account/password")
@requires("viewer", write="viewer")
def account_password() -> Response | tuple[str, int]:
    """A new password ends every session of the account; this browser gets a new one."""
    row = _me()
    form = _password_form(row)
    if not form.validate_on_submit():
        return _page(password_form=form), 400
    if not check_password_hash(row.password_hash, form.current.data):
        form.current.errors = [tr("This is not your current password.")]
        return _page(password_form=form), 400
    row.password_hash = hash_password(form.password.data)
    ended = operator_sessions.end_all(db(), row.id, "password")
    audit.record(db(), "update", "operator_user", row.id, None, {"password": "changed", "sessions_ended": ended})
    login_user(start(row))
    db().commit()
    flash(tr("Password changed. Every other session is signed out."), "info")
    return redirect(url_for("admin.account"))


@bp.post("/account/signout-others")
@requires("viewer", write="viewer")
def account_signout_others() -> Response:
    """End every session of this account but this one."""
    row = _me()
    ended = operator_sessions.end_all(db(), row.id, "everywhere")
    login_user(start(row))
    audit.record(db(), "signout_everywhere", "operator_user", row.id, None, {"sessions_ended": ended})
    db().commit()
    flash(tr("Other sessions signed out."), "info")
    return redirect(url_for("admin.account"))


@bp.post("/account/two-factor/start")
@requires("viewer", write="viewer")
def two_factor_start() -> Response:
    """Make a secret for the authenticator app; it counts once a code confirms it."""
    if ConfirmForm().validate_on_submit() and _me().totp_secret is None:
        session["totp_pending"] = new_totp_secret()
    return redirect(url_for("admin.account"))


@bp.post("/account/two-factor/confirm")
@requires("viewer", write="viewer")
def two_factor_confirm() -> Response | tuple[str, int]:
    """Turn the second factor on once the app shows a right code for the new secret."""
    row = _me()
    form = CodeForm()
    pending = session.get("totp_pending")
    if not form.validate_on_submit() or row.totp_secret is not None or not pending:
        return redirect(url_for("admin.account"))
    step = accepted_step(pending, form.code.data, None)
    if step is None:
        form.code.errors = [tr("Wrong code: check the phone's clock and type the code the app shows now.")]
        return _page(code_form=form), 400
    row.totp_secret, row.totp_last_step = pending, step
    session.pop("totp_pending", None)
    audit.record(db(), "update", "operator_user", row.id, {"two_factor": False}, {"two_factor": True})
    db().commit()
    flash(tr("Second factor on: sign-in now asks for a code from the app."), "info")
    return redirect(url_for("admin.account"))


@bp.post("/account/two-factor/off")
@requires("viewer", write="viewer")
def two_factor_off() -> Response | tuple[str, int]:
    """Turn the second factor off; it takes a current code, so a left-open browser cannot."""
    row = _me()
    form = CodeForm()
    if not form.validate_on_submit() or row.totp_secret is None:
        return redirect(url_for("admin.account"))
    step = accepted_step(row.totp_secret, form.code.data, row.totp_last_step)
    if step is None:
        form.code.errors = [tr("Wrong or already used code.")]
        return _page(code_form=form), 400
    row.totp_secret, row.totp_last_step = None, None
    audit.record(db(), "update", "operator_user", row.id, {"two_factor": True}, {"two_factor": False})
    db().commit()
    flash(tr("Second factor off."), "info")
    return redirect(url_for("admin.account"))
