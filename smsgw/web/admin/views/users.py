"""Admins only: operator accounts and the audit log."""
from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from smsgw.models import AuditEntry, OperatorUser
from smsgw.services import operator_sessions, signin_throttle
from smsgw.web.admin import audit, bp
from smsgw.web.admin.auth import hash_password, requires
from smsgw.web.admin.forms import AuditFilterForm, ConfirmForm, UserEditForm, UserForm
from smsgw.web.admin.i18n import tr, tr_n
from smsgw.web.admin.views.common import args_without_page, db, paginate

USER_FIELDS = ("email", "role", "language", "active")


@bp.route("/users", methods=["GET", "POST"])
@requires("admin")
def users() -> Response | str:
    """Every account, and a form to create one."""
    session = db()
    form = UserForm()
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        if session.scalar(sa.select(OperatorUser.id).where(OperatorUser.email == email)):
            form.email.errors.append(tr("An account with this email exists."))
        else:
            row = OperatorUser(
                email=email,
                role=form.role.data,
                language=form.language.data,
                password_hash=hash_password(form.password.data),
                active=True,
            )
            session.add(row)
            session.flush()
            audit.record(session, "create", "operator_user", row.id, None, audit.snapshot(row, USER_FIELDS))
            session.commit()
            flash(tr("Account %(email)s created.", email=email), "info")
            return redirect(url_for("admin.users"))
    rows = session.scalars(sa.select(OperatorUser).order_by(OperatorUser.email)).all()
    return render_template("admin/users.html", form=form, users=rows)


def _last_admin(session: so.Session, row: OperatorUser) -> bool:
    """True when ``row`` is the only active admin (who must not lock everyone out)."""
    others = session.scalar(
        sa.select(sa.func.count(OperatorUser.id)).where(
            OperatorUser.role == "admin", OperatorUser.active.is_(True), OperatorUser.id != row.id
        )
    )
    return row.role == "admin" and row.active and not others


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@requires("admin")
def user_edit(user_id: int) -> Response | str:
    """Change an account's role, switch it off, or set a new password."""
    session = db()
    row = session.get(OperatorUser, user_id) or abort(404)
    form = UserEditForm(obj=row)
    form.account_email = row.email  # read by the password policy
    if form.validate_on_submit():
        demoted = form.role.data != "admin" or not form.active.data
        if demoted and _last_admin(session, row):
            form.form_errors.append(tr("This is the only active admin: make another admin first."))
        else:
            before = audit.snapshot(row, USER_FIELDS)
            row.role, row.active = form.role.data, bool(form.active.data)
            old, new = audit.changed(before, audit.snapshot(row, USER_FIELDS))
            if form.password.data:
                row.password_hash = hash_password(form.password.data)
                new["password"] = "changed"
            if form.remove_two_factor.data and row.totp_secret is not None:
                row.totp_secret, row.totp_last_step = None, None
                old["two_factor"], new["two_factor"] = True, False
            # A new password, a switched-off account or the admin's word ends every session
            # of the account, wherever its cookie has been copied to.
            reason = ("password" if form.password.data else "deactivated" if not row.active
                      else "everywhere" if form.sign_out_everywhere.data else None)
            if reason is not None:
                new["sessions_ended"] = operator_sessions.end_all(session, row.id, reason)
            if new:
                audit.record(session, "update", "operator_user", row.id, old, new)
                session.commit()
                flash(tr("Account %(email)s saved.", email=row.email), "info")
            return redirect(url_for("admin.users"))
    return render_template("admin/user_edit.html", form=form, user=row, me=row.id == current_user.id)


@bp.get("/audit")
@requires("admin")
def audit_log() -> str:
    """Every recorded change, newest first, with who made it and the values before and after."""
    session = db()
    form = AuditFilterForm(request.args)
    form.validate()
    query = sa.select(AuditEntry)
    if form.entity.data:
        query = query.where(AuditEntry.entity == form.entity.data.strip())
    if form.action.data:
        query = query.where(AuditEntry.action == form.action.data.strip())
    page = paginate(session, query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()))
    return render_template("admin/audit.html", form=form, page=page, page_args=args_without_page())


@bp.get("/throttles")
@requires("admin")
def throttles() -> str:
    """Sign-in throttles with recent failures: who is being made to wait, and until when."""
    return render_template("admin/throttles.html", rows=signin_throttle.active(db()), form=ConfirmForm())


@bp.post("/throttles/clear")
@requires("admin")
def throttles_clear() -> Response:
    """Clear one throttle (``key``) or every one: the next try is not made to wait."""
    if ConfirmForm().validate_on_submit():
        key = request.form.get("key") or None
        cleared = signin_throttle.clear(db(), key)
        audit.record(db(), "clear", "signin_throttle", key, None, {"cleared": cleared})
        db().commit()
        flash(tr_n("%(num)d throttle cleared.", "%(num)d throttles cleared.", cleared), "info")
    return redirect(url_for("admin.throttles"))
