"""Intention-to-treat effect of a randomised rollout on the price share.

Each farmer of a drawn unit counts as treated from their unit's wave start date, whether
or not they used the service (and whatever their own enrolment date): the random draw
makes the waves comparable, and using the assignment instead of the uptake keeps it so.
The estimator is the staggered one of ``enrolment`` (cohort = wave, comparisons = units
not started yet, leads tested jointly), clustered by the randomised unit. Farmers of units
outside the rollout are left out. Compliance is reported beside the effect: how many of
each wave's farmers found the service before their wave (they dilute the effect towards
zero) and how many were enrolled by the end.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from smsgw.analytics import enrolment
from smsgw.analytics.config import AnalyticsConfig
from smsgw.models import ProducerGroup, Rollout, RolloutUnit, RolloutWave


def load_assignments(conn: sa.Connection) -> pd.DataFrame:
    """Every drawn unit: rollout name, unit kind, unit label, wave number and start date."""
    query = (
        sa.select(Rollout.name.label("rollout"), Rollout.unit, Rollout.seed,
                  sa.func.coalesce(RolloutUnit.village, ProducerGroup.code).label("label"),
                  RolloutWave.number.label("wave"), RolloutWave.starts_on)
        .join(RolloutUnit, RolloutUnit.rollout_id == Rollout.id)
        .join(RolloutWave, RolloutWave.id == RolloutUnit.wave_id)
        .outerjoin(ProducerGroup, ProducerGroup.id == RolloutUnit.group_id)
        .order_by(Rollout.id, RolloutWave.number)
    )
    frame = pd.DataFrame(conn.execute(query).mappings().all(),
                         columns=["rollout", "unit", "seed", "label", "wave", "starts_on"])
    frame["starts_on"] = pd.to_datetime(frame["starts_on"]).astype("datetime64[ns]")
    return frame


def assigned_farmers(people: pd.DataFrame, units: pd.DataFrame) -> pd.DataFrame:
    """(farmer, label, wave, starts_on) for the farmers of one rollout's units."""
    if people.empty or units.empty:
        return pd.DataFrame(columns=["farmer", "label", "wave", "starts_on"])
    column = "village" if units["unit"].iloc[0] == "village" else "group"
    by_label = units.set_index("label")[["wave", "starts_on"]]
    found = people[["farmer", column]].rename(columns={column: "label"})
    return found[found["label"].isin(by_label.index)].join(by_label, on="label").reset_index(drop=True)


def effects(frame: pd.DataFrame, people: pd.DataFrame, assignments: pd.DataFrame, cfg: AnalyticsConfig,
            rng: np.random.Generator) -> list[dict[str, Any]]:
    """One intention-to-treat estimate per rollout, with its design and compliance."""
    out = []
    for name, units in assignments.groupby("rollout", sort=False):
        farmers = assigned_farmers(people, units)
        starts = farmers.set_index("farmer")
        sales = frame[frame["farmer"].isin(starts.index)].copy() if len(frame) else frame.iloc[0:0]
        if len(sales):
            sales["enrolled"] = sales["farmer"].map(starts["starts_on"]).to_numpy()
            # The estimator clusters by village, else group: here by the randomised unit.
            sales["village"] = "unit:" + sales["farmer"].map(starts["label"]).astype(str)
            sales["group"] = ""
        effect = enrolment.estimate(sales, cfg, rng) if len(sales) else enrolment.EnrolmentEffect(
            None, None, "insufficient data", reason="no sale with a reference price from the rollout's farmers")
        out.append({
            "rollout": str(name), "unit": str(units["unit"].iloc[0]), "seed": int(units["seed"].iloc[0]),
            "estimand": "intention to treat: every farmer of a unit from its wave's start date, used or not",
            "waves": _waves(units, farmers, people),
            "effect": effect,
        })
    return out


def _waves(units: pd.DataFrame, farmers: pd.DataFrame, people: pd.DataFrame) -> list[dict[str, Any]]:
    enrolled = people.set_index("farmer")["enrolled"] if len(people) else pd.Series(dtype="datetime64[ns]")
    rows = []
    for wave, part in units.groupby("wave", sort=True):
        start = part["starts_on"].iloc[0]
        members = farmers.loc[farmers["wave"] == wave, "farmer"]
        dates = enrolled.reindex(members)
        rows.append({"wave": int(wave), "starts_on": start.date().isoformat(), "units": len(part),
                     "farmers": len(members), "enrolled_before_start": int((dates < start).sum()),
                     "enrolled": int(dates.notna().sum())})
    return rows
