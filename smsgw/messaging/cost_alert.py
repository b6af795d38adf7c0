"""The day's outbound SMS cost against SMS_DAILY_COST_ALERT: a warning and one audit entry a day.

A runaway loop or an SMS-pumping attack shows first as money: the scheduler checks the
cost AT reported for messages sent since local midnight (SMSGW_TIMEZONE), per currency,
and when it passes the configured amount logs a WARNING and writes one AuditEntry for
that day and currency, which the admin's audit page shows. Messages without a reported
cost (the console gateway) count as free.
"""
from __future__ import annotations

import datetime as dt
import decimal
import logging
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.db import utcnow
from smsgw.models import AuditEntry, OutboundMessage

log = logging.getLogger(__name__)
ACTION = "sms.cost_alert"


def thresholds(value: str) -> dict[str, decimal.Decimal]:
    """``"KES:2000,XOF:30000"`` as {currency: amount}; a malformed item is logged and skipped."""
    limits: dict[str, decimal.Decimal] = {}
    for item in str(value or "").split(","):
        if not item.strip():
            continue
        currency, _, amount = item.partition(":")
        try:
            limit = decimal.Decimal(amount.strip())
        except decimal.InvalidOperation:
            limit = decimal.Decimal("NaN")
        if len(currency.strip()) != 3 or not limit.is_finite() or limit < 0:
            log.error("SMS_DAILY_COST_ALERT item %r is not CUR:amount; ignored", item)
            continue
        limits[currency.strip().upper()] = limit
    return limits


def day_costs(session: so.Session, since: dt.datetime) -> dict[str, decimal.Decimal]:
    """Cost reported by the gateway for messages sent since ``since``, per currency."""
    rows = session.execute(
        sa.select(OutboundMessage.cost_currency, sa.func.sum(OutboundMessage.cost))
        .where(OutboundMessage.sent_at >= since, OutboundMessage.cost.is_not(None))
        .group_by(OutboundMessage.cost_currency)
    ).all()
    return {(currency or "").upper(): decimal.Decimal(total or 0) for currency, total in rows}


def check_daily_cost(
    session: so.Session, settings: Mapping[str, Any], now: dt.datetime | None = None
) -> list[AuditEntry]:
    """Alert for each currency whose cost today passed its threshold, once per local day."""
    limits = thresholds(settings.get("SMS_DAILY_COST_ALERT", ""))
    if not limits:
        return []
    now = now or utcnow()
    zone = ZoneInfo(settings["SMSGW_TIMEZONE"])
    day = now.astimezone(zone).date()
    costs = day_costs(session, dt.datetime.combine(day, dt.time(0), zone).astimezone(dt.UTC))
    alerts = []
    for currency, limit in sorted(limits.items()):
        spent = costs.get(currency, decimal.Decimal(0)).quantize(decimal.Decimal("0.01"))
        key = f"{day.isoformat()}:{currency}"
        if spent <= limit or session.scalar(
            sa.select(AuditEntry.id).where(AuditEntry.action == ACTION, AuditEntry.entity_id == key)
        ):
            continue
        log.warning("SMS cost today %s %s passed the alert threshold %s %s", spent, currency, limit, currency)
        entry = AuditEntry(
            actor="system",
            action=ACTION,
            entity="outbound_message",
            entity_id=key,
            after={"date": day.isoformat(), "currency": currency, "spent": str(spent), "threshold": str(limit)},
        )
        session.add(entry)
        alerts.append(entry)
    session.flush()
    return alerts
