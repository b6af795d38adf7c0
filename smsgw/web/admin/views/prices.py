"""Prices: the table with filters, the review queue, and CSV upload through the importer."""
from __future__ import annotations

import tempfile
from pathlib import Path

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from smsgw.models import Commodity, Market, OperatorUser, PriceObservation
from smsgw.services import price_review
from smsgw.web.admin import audit, bp
from smsgw.web.admin.auth import requires
from smsgw.web.admin.forms import PriceFilterForm, ReviewForm, UploadForm, options
from smsgw.web.admin.i18n import tr
from smsgw.web.admin.labels import choices
from smsgw.web.admin.views.common import args_without_page, db, id_or_none, paginate

REVIEW_PAGE = 20


def _filter_form(session: so.Session) -> PriceFilterForm:
    form = PriceFilterForm(request.args)
    any_ = [("", tr("any"))]
    form.commodity.choices = options(
        any_ + [(str(c.id), c.name("en")) for c in session.scalars(sa.select(Commodity).order_by(Commodity.code))]
    )
    form.market.choices = options(
        any_ + [(str(m.id), m.name) for m in session.scalars(sa.select(Market).order_by(Market.name))]
    )
    form.status.choices = choices("price_status", blank=tr("any"))
    form.kind.choices = choices("price_kind", blank=tr("any"))
    return form


@bp.get("/prices")
@requires("viewer")
def prices() -> str:
    """Every price with filters, newest first."""
    session = db()
    form = _filter_form(session)
    form.validate()  # a value outside a select's choices is ignored (no int() of hostile text)
    query = sa.select(PriceObservation).options(
        so.joinedload(PriceObservation.commodity), so.joinedload(PriceObservation.market),
        so.joinedload(PriceObservation.unit), so.joinedload(PriceObservation.grade),
    )
    if form.commodity.data and not form.commodity.errors and id_or_none(form.commodity.data) is not None:
        query = query.where(PriceObservation.commodity_id == id_or_none(form.commodity.data))
    if form.market.data and not form.market.errors and id_or_none(form.market.data) is not None:
        query = query.where(PriceObservation.market_id == id_or_none(form.market.data))
    if form.status.data and not form.status.errors:
        query = query.where(PriceObservation.status == form.status.data)
    if form.kind.data and not form.kind.errors:
        query = query.where(PriceObservation.kind == form.kind.data)
    if form.since.data and not form.since.errors:
        query = query.where(PriceObservation.observed_on >= form.since.data)
    if form.until.data and not form.until.errors:
        query = query.where(PriceObservation.observed_on <= form.until.data)
    page = paginate(session, query.order_by(PriceObservation.observed_on.desc(), PriceObservation.id.desc()))
    pending = session.scalar(sa.select(sa.func.count(PriceObservation.id)).where(PriceObservation.status == "pending"))
    return render_template(
        "admin/prices.html",
        form=form,
        page=page,
        pending=pending,
        upload_form=UploadForm(),
        page_args=args_without_page(),
    )


@bp.get("/prices/review")
@requires("operator")
def review_queue() -> str:
    """Held prices, oldest first, each beside the market's recent approved prices."""
    session = db()
    pending = price_review.list_pending(session, limit=REVIEW_PAGE)
    total = price_review.count_pending(session)
    return render_template("admin/review.html", pending=pending, total=total, form=ReviewForm())


@bp.post("/prices/<int:price_id>/review")
@requires("operator")
def review_price(price_id: int) -> Response:
    """Approve, reject, or correct and approve one held price (the service audits it)."""
    session = db()
    form = ReviewForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
        return redirect(url_for("admin.review_queue", _anchor=f"price-{price_id}"))
    user = session.get(OperatorUser, current_user.id)
    try:
        if form.correct.data:
            price_review.correct(session, price_id, form.amount.data, user=user)
            message = tr("Price corrected and published.")
        elif form.reject.data:
            price_review.reject(session, price_id, form.note.data or "", user=user)
            message = tr("Price rejected.")
        else:
            price_review.approve(session, price_id, user=user)
            message = tr("Price approved: farmers see it now.")
    except price_review.ReviewError as exc:
        session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("admin.review_queue"))
    session.commit()
    flash(message, "info")
    return redirect(url_for("admin.review_queue"))


@bp.post("/prices/upload")
@requires("operator")
def upload_prices() -> Response | str:
    """Import a CSV of prices through the importer and show its summary."""
    from smsgw.services.price_checks import Policy
    from smsgw.services.price_files import ImportFileError
    from smsgw.services.price_import import import_prices

    session = db()
    form = UploadForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
        return redirect(url_for("admin.prices"))
    fmt = request.form.get("format", "generic")
    dry_run = bool(request.form.get("dry_run"))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload.csv"
        form.file.data.save(path)
        try:
            summary = import_prices(
                session, path, fmt, atomic=True, dry_run=dry_run, policy=Policy.from_settings(current_app.config)
            )
        except (ImportFileError, UnicodeDecodeError) as exc:
            session.rollback()
            flash(tr("The file could not be imported: %(reason)s", reason=str(exc)), "error")
            return redirect(url_for("admin.prices"))
    if summary.saved:
        counts = {
            "rows_read": summary.rows_read,
            "imported": summary.imported,
            "approved": summary.approved,
            "held": summary.held,
            "duplicates": summary.duplicates,
            "rejected": summary.rejected_count,
            "source": summary.source,
        }
        audit.record(session, "import", "price_observation", None, None, counts)
        session.commit()
    return render_template(
        "admin/import_summary.html", summary=summary, dry_run=dry_run, filename=form.file.data.filename
    )
