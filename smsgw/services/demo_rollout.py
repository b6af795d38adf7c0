"""The demo's randomised rollouts (content/rollout.toml): villages, farmers, waves and sales.

Each rollout's villages are drawn into waves by ``services.rollouts`` (seeded), the waves
that have started are enrolled, and each farmer reports one sale a month, priced at a
share of the market's approved wholesale price of that day. The share carries village,
farmer and month effects and, from the village's wave start, the planted effect: the
number the report's intention-to-treat estimate should recover.
"""
from __future__ import annotations

import datetime as dt
import decimal
import math
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.db import utcnow
from smsgw.models import Commodity, Contact, Market, PriceObservation, Rollout, SaleReport, Unit
from smsgw.services import rollouts

SOURCE = "demo-rollout"
PER_BASE = decimal.Decimal("0.000001")
WINDOW_DAYS = 3  # the report's reference: a price on the sale day or up to this many days before


def load_rollouts(session: so.Session, content: Path, today: dt.date, progress: Callable[[str], None]) -> int:
    """Create each rollout of ``content/rollout.toml`` not made yet; the sales added."""
    path = content / "rollout.toml"
    if not path.exists():
        return 0
    added = 0
    for item in tomllib.loads(path.read_text("utf-8")).get("rollout", []):
        if session.scalar(sa.select(Rollout.id).where(Rollout.name == item["name"])) is not None:
            continue
        progress(f"randomised rollout {item['name']}")
        added += _one(session, item, today)
    rollouts.enrol_due(session, today)
    return added


def _one(session: so.Session, item: dict[str, Any], today: dt.date) -> int:
    market = session.scalars(sa.select(Market).where(Market.code == item["market"])).one()
    commodity = session.scalars(sa.select(Commodity).where(Commodity.code == item["commodity"])).one()
    unit = session.scalars(sa.select(Unit).where(Unit.code == item["unit"])).one()
    villages: list[str] = item["villages"]
    farmers = {}
    for v, village in enumerate(villages, start=1):
        for f in range(1, item["farmers_per_village"] + 1):
            contact = Contact(phone=f"{item['phone_prefix']}{v:02d}{f:02d}", name=f"{village} farmer {f}",
                              language=item["language"], language_chosen=True, home_market_id=market.id,
                              village=village, consent="granted", consented_at=utcnow())
            session.add(contact)
            farmers[contact.phone] = (village, contact)
    session.flush()
    first = today - dt.timedelta(days=item["first_wave_days_ago"])
    made = rollouts.create(session, item["name"], "village", item["waves"], first, item["every_days"],
                           seed=item["seed"], units=villages, created_by="demo content")
    starts = {unit_.village: wave.starts_on for wave in made.waves for unit_ in wave.units}
    reference = _wholesale(session, market, commodity, unit, today - dt.timedelta(days=31 * item["months"] + 7))
    rng = np.random.default_rng(item["seed"])
    village_effect = dict(zip(villages, rng.normal(0, 0.03, len(villages)), strict=True))
    month_effect = rng.normal(0, 0.02, item["months"] + 1)
    rows = []
    planted = math.log1p(item["planted_effect_pct"] / 100)
    for phone, (village, contact) in sorted(farmers.items()):
        own = rng.normal(0, 0.04)
        for back in range(item["months"], -1, -1):
            month = _months_back(today, back)
            day = month.replace(day=15) + dt.timedelta(days=int(rng.integers(0, 4)))
            ref = next((reference[d] for d in _window(day) if d in reference), None)
            if day > today or ref is None:
                continue
            log_share = (math.log(item["share"]) + village_effect[village] + own + month_effect[back]
                         + (planted if day >= starts[village] else 0.0) + rng.normal(0, 0.05))
            price = (ref * decimal.Decimal(math.exp(log_share))).quantize(decimal.Decimal(1))
            rows.append({
                "contact_id": contact.id, "commodity_id": commodity.id, "market_id": market.id,
                "quantity": decimal.Decimal(int(rng.integers(2, 11))), "unit_id": unit.id, "price": price,
                "currency": market.currency, "price_per_base": (price / unit.factor).quantize(PER_BASE),
                "buyer_type": "farm_gate_trader" if rng.random() < 0.7 else "market", "sold_on": day,
                "channel": "seed", "source_ref": f"{SOURCE}:{phone}:{day.isoformat()}", "created_at": utcnow(),
            })
    if rows:
        session.execute(sa.insert(SaleReport), rows)
    return len(rows)


def _wholesale(session: so.Session, market: Market, commodity: Commodity, unit: Unit,
               since: dt.date) -> dict[dt.date, decimal.Decimal]:
    """Approved wholesale prices by day, per ``unit``."""
    found = session.execute(
        sa.select(PriceObservation.observed_on, PriceObservation.price_per_base)
        .where(PriceObservation.market_id == market.id, PriceObservation.commodity_id == commodity.id,
               PriceObservation.kind == "wholesale", PriceObservation.status == "approved",
               PriceObservation.observed_on >= since)
    ).all()
    return {day: per_base * unit.factor for day, per_base in found}


def _window(day: dt.date) -> list[dt.date]:
    return [day - dt.timedelta(days=back) for back in range(WINDOW_DAYS + 1)]


def _months_back(today: dt.date, back: int) -> dt.date:
    index = today.year * 12 + today.month - 1 - back
    return dt.date(index // 12, index % 12 + 1, 1)
