"""Group orders: open ones first, then past ones, each with its commitments and totals."""
from __future__ import annotations

import decimal

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import abort, render_template

from smsgw.models import Commitment, GroupOrder
from smsgw.web.admin import bp
from smsgw.web.admin.auth import requires
from smsgw.web.admin.views.common import args_without_page, db, paginate


def _order_options() -> list[so.interfaces.LoaderOption]:
    return [
        so.joinedload(GroupOrder.group), so.joinedload(GroupOrder.commodity), so.joinedload(GroupOrder.unit),
        so.joinedload(GroupOrder.grade), so.joinedload(GroupOrder.buyer),
    ]


@bp.get("/orders")
@requires("operator")
def orders() -> str:
    """Open orders (soonest deadline first), then past orders (newest first)."""
    session = db()
    open_rows = session.scalars(
        sa.select(GroupOrder)
        .options(*_order_options())
        .where(GroupOrder.status == "open")
        .order_by(GroupOrder.deadline)
        .limit(200)
    ).all()
    past = paginate(
        session,
        sa.select(GroupOrder)
        .options(*_order_options())
        .where(GroupOrder.status != "open")
        .order_by(GroupOrder.created_at.desc(), GroupOrder.id.desc()),
    )
    ids = [order.id for order in open_rows] + [order.id for order in past.rows]
    members = (
        dict(
            session.execute(
                sa.select(Commitment.order_id, sa.func.count(Commitment.id))
                .where(Commitment.order_id.in_(ids))
                .group_by(Commitment.order_id)
            ).all()
        )
        if ids
        else {}
    )
    return render_template(
        "admin/orders.html", open_orders=open_rows, past=past, members=members, page_args=args_without_page()
    )


@bp.get("/orders/<int:order_id>")
@requires("operator")
def order(order_id: int) -> str:
    """One order: who committed how much, delivered, and what it comes to."""
    session = db()
    found = session.scalar(
        sa.select(GroupOrder)
        .options(*_order_options(), so.selectinload(GroupOrder.price_tiers))
        .where(GroupOrder.id == order_id)
    ) or abort(404)
    commitments = session.scalars(
        sa.select(Commitment).options(so.joinedload(Commitment.contact), so.joinedload(Commitment.unit))
        .where(Commitment.order_id == found.id).order_by(Commitment.created_at, Commitment.id)
    ).all()
    delivered = sum((item.delivered_quantity or decimal.Decimal(0) for item in commitments), decimal.Decimal(0))
    price = found.final_price or found.price
    value = (found.committed_total * price).quantize(decimal.Decimal("0.01")) if price is not None else None
    progress = float(found.committed_total / found.target_quantity) if found.target_quantity else None
    return render_template(
        "admin/order.html", order=found, commitments=commitments, delivered=delivered, value=value, progress=progress,
    )
