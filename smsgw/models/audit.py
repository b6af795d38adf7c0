"""The audit log: who changed what, with the values before and after."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.db import Base, utcnow


class AuditEntry(Base):
    """One change made by an operator, the CLI or the system."""

    __tablename__ = "audit_entry"
    __table_args__ = (sa.Index("ix_audit_entry_entity", "entity", "entity_id"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow, index=True)
    user_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("operator_user.id"))
    # Who acted when there is no user: "cli", "system", "seed".
    actor: so.Mapped[str] = so.mapped_column(sa.String(80))
    action: so.Mapped[str] = so.mapped_column(sa.String(40))
    entity: so.Mapped[str] = so.mapped_column(sa.String(40))
    entity_id: so.Mapped[str | None] = so.mapped_column(sa.String(40))
    before: so.Mapped[dict[str, Any] | None]
    after: so.Mapped[dict[str, Any] | None]
