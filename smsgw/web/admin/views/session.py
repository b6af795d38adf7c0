"""Signing in (password, then the authenticator code when the operator has one) and out,
and the operator's language."""
from __future__ import annotations

import time

from flask import flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from smsgw.db import utcnow
from smsgw.models import OperatorUser
from smsgw.services import operator_sessions
from smsgw.web.admin import audit, bp
from smsgw.web.admin.auth import (
    SignInOutcome,
    check_code,
    check_password,
    public,
    requires,
    safe_next,
    start,
)
from smsgw.web.admin.forms import CodeForm, LanguageForm, SignInForm
from smsgw.web.admin.i18n import tr
from smsgw.web.admin.views.common import db

# Between a right password and its code: the code must come within this many seconds.
PENDING_SECONDS = 300


def _wait(form: SignInForm | CodeForm, outcome: SignInOutcome, template: str) -> tuple[str, int]:
    minutes, seconds = divmod(outcome.wait_seconds, 60)
    wait = f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"
    form.form_errors.append(tr("Too many failed sign-ins from here. Wait %(wait)s, then try again.", wait=wait))
    return render_template(template, form=form), 429


def _signed_in(row: OperatorUser, target: str | None) -> Response:
    """Open a fresh session (nothing set before it, by anyone, survives) and go on."""
    session.clear()
    user = start(row)
    login_user(user)
    session.permanent = True
    row.last_login_at = utcnow()
    audit.record(db(), "signin", "operator_user", row.id)
    db().commit()
    return redirect(safe_next(target))


@bp.route("/signin", methods=["GET", "POST"])
@public
def signin() -> Response | tuple[str, int] | str:
    """The sign-in form; failures from one place make the next try wait longer."""
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = SignInForm()
    if form.validate_on_submit():
        outcome = check_password(form.email.data.strip().lower(), form.password.data)
        if outcome.status == "wait":
            return _wait(form, outcome, "admin/signin.html")
        if outcome.status == "wrong" or outcome.user is None:
            form.form_errors.append(tr("Wrong email or password."))
            return render_template("admin/signin.html", form=form), 200
        if outcome.status == "code":
            session.clear()
            session["signin_pending"] = {
                "user": outcome.user.id,
                "at": time.time(),
                "next": request.args.get("next", ""),
            }
            return redirect(url_for("admin.signin_code"))
        return _signed_in(outcome.user, request.args.get("next"))
    return render_template("admin/signin.html", form=form)


@bp.route("/signin/code", methods=["GET", "POST"])
@public
def signin_code() -> Response | tuple[str, int] | str:
    """Second step for operators with an authenticator app."""
    pending = session.get("signin_pending")
    if not isinstance(pending, dict) or time.time() - float(pending.get("at", 0)) > PENDING_SECONDS:
        session.pop("signin_pending", None)
        flash(tr("Sign in again: the code was not given in time."), "error")
        return redirect(url_for("admin.signin"))
    form = CodeForm()
    if form.validate_on_submit():
        outcome = check_code(int(pending["user"]), form.code.data)
        if outcome.status == "wait":
            return _wait(form, outcome, "admin/signin_code.html")
        if outcome.status != "ok" or outcome.user is None:
            form.form_errors.append(tr("Wrong or already used code."))
            return render_template("admin/signin_code.html", form=form), 200
        return _signed_in(outcome.user, pending.get("next"))
    return render_template("admin/signin_code.html", form=form)


@bp.post("/signout")
@requires("viewer", write="viewer")
def signout() -> Response:
    """End the session in the database too: a copy of the cookie opens nothing after this."""
    operator_sessions.end_session(db(), current_user.get_id(), "signout")
    db().commit()
    logout_user()
    session.clear()
    flash(tr("Signed out."), "info")
    return redirect(url_for("admin.signin"))


@bp.post("/language")
@requires("viewer", write="viewer")
def language() -> Response:
    """Remember the operator's language for the admin."""
    form = LanguageForm()
    if form.validate_on_submit():
        row = db().get(OperatorUser, current_user.id)
        if row is not None and row.language != form.language.data:
            audit.record(
                db(), "update", "operator_user", row.id, {"language": row.language}, {"language": form.language.data}
            )
            row.language = form.language.data
            db().commit()
    return redirect(safe_next(request.form.get("next")))
