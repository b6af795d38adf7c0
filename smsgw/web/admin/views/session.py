"""Signing in and out, and the operator's language."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from smsgw.db import utcnow
from smsgw.models import OperatorUser
from smsgw.web.admin import audit, bp
from smsgw.web.admin.auth import (
    AdminUser,
    check_credentials,
    public,
    requires,
    safe_next,
    too_many_failures,
)
from smsgw.web.admin.forms import LanguageForm, SignInForm
from smsgw.web.admin.i18n import tr
from smsgw.web.admin.views.common import db


@bp.route("/signin", methods=["GET", "POST"])
@public
def signin() -> Response | tuple[str, int] | str:
    """The sign-in form; too many failures for an email or address make it wait."""
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = SignInForm()
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        if too_many_failures(email):
            form.form_errors.append(tr("Too many failed sign-ins. Wait 15 minutes, then try again."))
            return render_template("admin/signin.html", form=form), 429
        row = check_credentials(email, form.password.data)
        if row is None:
            form.form_errors.append(tr("Wrong email or password."))
            return render_template("admin/signin.html", form=form), 200
        # A fresh session on sign-in: nothing set before it (by anyone) survives.
        session.clear()
        login_user(AdminUser(row))
        session.permanent = True
        row.last_login_at = utcnow()
        audit.record(db(), "signin", "operator_user", row.id)
        db().commit()
        return redirect(safe_next(request.args.get("next")))
    return render_template("admin/signin.html", form=form)


@bp.post("/signout")
@requires("viewer", write="viewer")
def signout() -> Response:
    """End the session."""
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
            audit.record(db(), "update", "operator_user", row.id, {"language": row.language}, {"language": form.language.data})
            row.language = form.language.data
            db().commit()
    return redirect(safe_next(request.form.get("next")))
