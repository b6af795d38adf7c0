"""Randomised phase-in: villages or producer groups drawn into waves that start on set dates."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.db import Base, utcnow
from smsgw.models.people import ProducerGroup

UNITS = ("village", "group")


class Rollout(Base):
    """A phase-in design: which units start when, drawn once with a recorded seed.

    The draw is reproducible from ``seed`` and the sorted unit list; it is stored so
    the report never re-draws it.
    """

    __tablename__ = "rollout"
    __table_args__ = (sa.CheckConstraint("unit IN ('village', 'group')", name="unit_known"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(60), unique=True)
    unit: so.Mapped[str] = so.mapped_column(sa.String(8))
    seed: so.Mapped[int]
    created_by: so.Mapped[str] = so.mapped_column(sa.String(120), default="")
    created_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)

    waves: so.Mapped[list[RolloutWave]] = so.relationship(
        back_populates="rollout", cascade="all, delete-orphan", order_by="RolloutWave.number"
    )
    units: so.Mapped[list[RolloutUnit]] = so.relationship(back_populates="rollout", cascade="all, delete-orphan")


class RolloutWave(Base):
    """One wave: its units are enrolled on ``starts_on`` (``enrolled_at`` once done)."""

    __tablename__ = "rollout_wave"
    __table_args__ = (sa.UniqueConstraint("rollout_id", "number"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    rollout_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("rollout.id", ondelete="CASCADE"))
    number: so.Mapped[int]
    starts_on: so.Mapped[dt.date]
    enrolled_at: so.Mapped[dt.datetime | None]
    enrolled: so.Mapped[int] = so.mapped_column(default=0)  # farmers this wave enrolled

    rollout: so.Mapped[Rollout] = so.relationship(back_populates="waves")
    units: so.Mapped[list[RolloutUnit]] = so.relationship(back_populates="wave")


class RolloutUnit(Base):
    """A village (by name) or a producer group assigned to one wave of a rollout."""

    __tablename__ = "rollout_unit"
    __table_args__ = (
        sa.UniqueConstraint("rollout_id", "village"),
        sa.UniqueConstraint("rollout_id", "group_id"),
        sa.CheckConstraint("(village IS NULL) <> (group_id IS NULL)", name="village_or_group"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    rollout_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("rollout.id", ondelete="CASCADE"))
    wave_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("rollout_wave.id", ondelete="CASCADE"))
    village: so.Mapped[str | None] = so.mapped_column(sa.String(80))
    group_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("producer_group.id"))

    rollout: so.Mapped[Rollout] = so.relationship(back_populates="units")
    wave: so.Mapped[RolloutWave] = so.relationship(back_populates="units")
    group: so.Mapped[ProducerGroup | None] = so.relationship()

    @property
    def label(self) -> str:
        """The unit as operators name it."""
        return self.village if self.village is not None else (self.group.code if self.group else "")
