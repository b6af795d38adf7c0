"""Randomised phase-in: draw villages or producer groups into waves, enrol each on its date.

The design of a randomised wait-list: every unit gets the service, in an order drawn at
random, so the units still waiting are a fair comparison for those already started. The
draw is seeded and stored (never redrawn): the sorted unit list shuffled by
``random.Random(seed)``, then dealt to the waves in turn so their sizes differ by at most
one. On a wave's start date the scheduler enrols every farmer of its units
(``services.enrolment``, source ``rollout``); farmers who join a started unit later are
enrolled from the wave's date too. Nobody is refused prices while waiting: a farmer who
finds the service early is enrolled by it, and the report's intention-to-treat effect
still counts them by their unit's wave (it shows how many did).
"""
from __future__ import annotations

import datetime as dt
import random
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.db import utcnow
from smsgw.models import Contact, Membership, ProducerGroup, Rollout, RolloutUnit, RolloutWave
from smsgw.models.rollouts import UNITS
from smsgw.services import enrolment

MAX_WAVES = 24
# A wave a year after the last is still a phase-in; a seed is stored in a 32-bit column.
MAX_DAYS_APART = 366
MAX_SEED = 2**31 - 1


class RolloutError(ValueError):
    """A rollout that cannot be made as asked (the message says why)."""


@dataclass(frozen=True)
class WaveEnrolled:
    """What one pass of ``enrol_due`` did for one wave."""

    rollout: str
    wave: int
    starts_on: dt.date
    enrolled: int


def available_units(session: so.Session, unit: str) -> list[str]:
    """Every village (a farmer's, else their group's) or producer group code, sorted."""
    if unit == "group":
        return sorted(session.scalars(sa.select(ProducerGroup.code)))
    villages = set(session.scalars(
        sa.select(Contact.village).where(Contact.village != "", Contact.simulated.is_(False)).distinct()
    ))
    villages |= set(session.scalars(sa.select(ProducerGroup.village).where(ProducerGroup.village != "").distinct()))
    return sorted(villages)


def draw(units: list[str], waves: int, seed: int) -> list[list[str]]:
    """The units of each wave: ``units`` sorted, shuffled with ``seed``, dealt in turn."""
    order = sorted(units)
    random.Random(seed).shuffle(order)
    return [order[number::waves] for number in range(waves)]


def create(
    session: so.Session, name: str, unit: str, waves: int, first_start: dt.date, every_days: int,
    *, seed: int | None = None, units: list[str] | None = None, created_by: str = "",
) -> Rollout:
    """Draw and store a rollout; ``units`` defaults to every village or group known."""
    name = name.strip()
    if not name or len(name) > 60:
        raise RolloutError("give the rollout a name of 1 to 60 characters")
    if unit not in UNITS:
        raise RolloutError(f"unit must be one of {', '.join(UNITS)}")
    if not 2 <= waves <= MAX_WAVES:
        raise RolloutError(f"waves must be between 2 and {MAX_WAVES}: one wave has nobody to compare with")
    if not 1 <= every_days <= MAX_DAYS_APART:
        raise RolloutError(f"waves must be 1 to {MAX_DAYS_APART} days apart")
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise RolloutError(f"the seed must be a whole number from 0 to {MAX_SEED}")
    if session.scalar(sa.select(Rollout.id).where(Rollout.name == name)) is not None:
        raise RolloutError(f"a rollout named {name!r} exists already (rollouts are never redrawn)")
    known = available_units(session, unit)
    chosen = sorted({u.strip() for u in units if u.strip()}) if units else known
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise RolloutError(f"unknown {unit}(s): {', '.join(unknown)}")
    if len(chosen) < waves:
        raise RolloutError(f"{len(chosen)} {unit}(s) for {waves} waves: each wave needs at least one")
    taken = _already_drawn(session, unit, chosen)
    if taken:
        raise RolloutError(f"already in another rollout: {', '.join(taken)}")
    seed = secrets.randbelow(2**31) if seed is None else seed
    rollout = Rollout(name=name, unit=unit, seed=seed, created_by=created_by)
    session.add(rollout)
    groups = {code: id_ for code, id_ in session.execute(sa.select(ProducerGroup.code, ProducerGroup.id))}
    for number, members in enumerate(draw(chosen, waves, seed), start=1):
        wave = RolloutWave(number=number, starts_on=first_start + dt.timedelta(days=every_days * (number - 1)))
        rollout.waves.append(wave)
        for label in members:
            wave.units.append(RolloutUnit(
                rollout=rollout, village=label if unit == "village" else None,
                group_id=groups[label] if unit == "group" else None,
            ))
    session.flush()
    return rollout


def _already_drawn(session: so.Session, unit: str, labels: list[str]) -> list[str]:
    if unit == "village":
        query = sa.select(RolloutUnit.village).where(RolloutUnit.village.in_(labels))
    else:
        query = (sa.select(ProducerGroup.code).join(RolloutUnit, RolloutUnit.group_id == ProducerGroup.id)
                 .where(ProducerGroup.code.in_(labels)))
    return sorted(set(session.scalars(query)))


def farmers_of(session: so.Session, wave: RolloutWave) -> list[int]:
    """Contact ids of the wave's units: their village (or their group's), or their group."""
    villages = [u.village for u in wave.units if u.village is not None]
    group_ids = [u.group_id for u in wave.units if u.group_id is not None]
    if villages:
        in_group_village = sa.select(Membership.contact_id).join(
            ProducerGroup, ProducerGroup.id == Membership.group_id).where(ProducerGroup.village.in_(villages))
        query = sa.select(Contact.id).where(sa.or_(
            Contact.village.in_(villages), sa.and_(Contact.village == "", Contact.id.in_(in_group_village))))
    else:
        query = sa.select(Contact.id).where(
            Contact.id.in_(sa.select(Membership.contact_id).where(Membership.group_id.in_(group_ids))))
    return list(session.scalars(query.where(Contact.simulated.is_(False)).order_by(Contact.id)))


def enrol_due(session: so.Session, today: dt.date) -> list[WaveEnrolled]:
    """Enrol the farmers of every wave started by ``today`` (idempotent: run it daily).

    Each farmer is enrolled from 00:00 UTC of the wave's date, unless an earlier enrolment
    is on record: the same instant whichever process runs this and whatever its zone, and
    the day the analytics (which read enrolment days in UTC) compare with the wave's date.
    """
    done = []
    waves = session.scalars(
        sa.select(RolloutWave).where(RolloutWave.starts_on <= today)
        .options(so.selectinload(RolloutWave.units), so.joinedload(RolloutWave.rollout))
        .order_by(RolloutWave.starts_on, RolloutWave.id)
    ).all()
    for wave in waves:
        start = dt.datetime.combine(wave.starts_on, dt.time(0), dt.UTC)
        changed = enrolment.enrol_many(session, farmers_of(session, wave), "rollout", start)
        first = wave.enrolled_at is None
        if first:
            wave.enrolled_at = utcnow()
        if changed or first:
            wave.enrolled += changed
            done.append(WaveEnrolled(wave.rollout.name, wave.number, wave.starts_on, changed))
    session.flush()
    return done


def describe(session: so.Session, name: str) -> dict[str, object]:
    """The rollout as stored: seed, unit, and each wave's date, units and enrolled count."""
    rollout = session.scalar(
        sa.select(Rollout).where(Rollout.name == name)
        .options(so.selectinload(Rollout.waves).selectinload(RolloutWave.units).joinedload(RolloutUnit.group))
    )
    if rollout is None:
        raise RolloutError(f"no rollout named {name!r}")
    return {
        "name": rollout.name, "unit": rollout.unit, "seed": rollout.seed, "created_by": rollout.created_by,
        "created_at": rollout.created_at.isoformat(),
        "waves": [{"wave": w.number, "starts_on": w.starts_on.isoformat(),
                   "units": sorted(u.label for u in w.units), "enrolled": w.enrolled,
                   "started": w.enrolled_at is not None} for w in rollout.waves],
    }


def names(session: so.Session) -> list[str]:
    """Every rollout's name, oldest first."""
    return list(session.scalars(sa.select(Rollout.name).order_by(Rollout.id)))
