"""The dashboard: are messages flowing, what do they cost, what waits for an operator."""
from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app, render_template

from smsgw.db import utcnow
from smsgw.models import (
    BulletinRun,
    GroupOrder,
    InboundMessage,
    Market,
    OutboundMessage,
    PriceObservation,
)
from smsgw.phones import country_of_prefix
from smsgw.services import health
from smsgw.services.bulletins import estimated_cost
from smsgw.web.admin import bp
from smsgw.web.admin.auth import requires
from smsgw.web.admin.i18n import tr_l
from smsgw.web.admin.views.common import db

FINAL = ("delivered", "failed", "unknown")
# The names of smsgw.services.health's checks, in the operator's words.
HEALTH_LABELS = {
    "database": tr_l("Database"),
    "schema": tr_l("Database schema"),
    "scheduler": tr_l("Scheduler"),
    "replies": tr_l("Replies waiting"),
    "gateway": tr_l("SMS gateway"),
}


@dataclass
class Stats:
    """The figures the dashboard shows."""

    inbound_today: int = 0
    outbound_today: int = 0
    status_today: dict[str, int] = field(default_factory=dict)
    delivery_rate: float | None = None
    failures: list[tuple[str, int]] = field(default_factory=list)
    segments_month: int = 0
    cost_month: dict[str, decimal.Decimal] = field(default_factory=dict)
    reported_cost_month: dict[str, decimal.Decimal] = field(default_factory=dict)
    waiting: int = 0
    oldest_waiting: dt.datetime | None = None
    pending_prices: int = 0
    open_orders: int = 0
    last_run: BulletinRun | None = None


def local_bounds(zone: ZoneInfo, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """UTC instants at which today and this month began in ``zone``."""
    local = now.astimezone(zone)
    day = dt.datetime.combine(local.date(), dt.time(), zone)
    month = dt.datetime.combine(local.date().replace(day=1), dt.time(), zone)
    return day.astimezone(dt.UTC), month.astimezone(dt.UTC)


def dashboard_stats(session: so.Session, settings: Mapping[str, Any], now: dt.datetime | None = None) -> Stats:
    """Today's and this month's message figures and the operator's open work."""
    now = now or utcnow()
    today, month = local_bounds(ZoneInfo(settings["SMSGW_TIMEZONE"]), now)
    out = OutboundMessage
    stats = Stats()
    stats.inbound_today = (
        session.scalar(sa.select(sa.func.count(InboundMessage.id)).where(InboundMessage.received_at >= today)) or 0
    )
    by_status = session.execute(
        sa.select(out.status, sa.func.count(out.id)).where(out.created_at >= today).group_by(out.status)
    ).all()
    stats.status_today = {status: count for status, count in by_status}
    stats.outbound_today = sum(stats.status_today.values())
    final = sum(stats.status_today.get(status, 0) for status in FINAL)
    if final:
        stats.delivery_rate = stats.status_today.get("delivered", 0) / final
    stats.failures = [
        (reason or "", count)
        for reason, count in session.execute(
            sa.select(out.last_error, sa.func.count(out.id))
            .where(out.status == "failed", out.created_at >= month)
            .group_by(out.last_error)
            .order_by(sa.func.count(out.id).desc())
            .limit(8)
        )
    ]
    # Estimated cost: segments times the configured price, in the currency of the
    # recipient's country (its markets' currency); the gateway's own figure beside it.
    currencies = dict(
        session.execute(sa.select(Market.country, sa.func.min(Market.currency)).group_by(Market.country)).all()
    )
    prefix = sa.func.substr(out.to_phone, 1, 4)
    for head, segments in session.execute(
        sa.select(prefix, sa.func.sum(out.segments)).where(out.created_at >= month).group_by(prefix)
    ):
        segments = int(segments or 0)
        stats.segments_month += segments
        country = country_of_prefix(head or "")
        currency = currencies.get(country) if country else None
        if currency:
            stats.cost_month[currency] = stats.cost_month.get(currency, decimal.Decimal(0)) + estimated_cost(
                segments, currency, settings
            )
    for currency, total in session.execute(
        sa.select(out.cost_currency, sa.func.sum(out.cost))
        .where(out.created_at >= month, out.cost.is_not(None), out.cost_currency.is_not(None))
        .group_by(out.cost_currency)
    ):
        if currency is not None and total is not None:  # both excluded by the query already
            stats.reported_cost_month[currency] = decimal.Decimal(total)
    stats.waiting, stats.oldest_waiting = session.execute(
        sa.select(sa.func.count(out.id), sa.func.min(out.created_at)).where(out.status == "queued")
    ).one()
    stats.pending_prices = (
        session.scalar(sa.select(sa.func.count(PriceObservation.id)).where(PriceObservation.status == "pending")) or 0
    )
    stats.open_orders = session.scalar(sa.select(sa.func.count(GroupOrder.id)).where(GroupOrder.status == "open")) or 0
    stats.last_run = session.scalar(
        sa.select(BulletinRun)
        .options(so.joinedload(BulletinRun.market))
        .order_by(BulletinRun.started_at.desc(), BulletinRun.id.desc())
        .limit(1)
    )
    return stats


@bp.get("/")
@requires("viewer")
def dashboard() -> str:
    """Today at a glance, after the service's health (the same facts as /healthz)."""
    checks = health.check(db(), utcnow(), current_app.config)
    stats = dashboard_stats(db(), current_app.config)
    return render_template(
        "admin/dashboard.html", stats=stats, final_statuses=FINAL, checks=checks, health_labels=HEALTH_LABELS
    )
