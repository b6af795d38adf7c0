"""The audit trail of the admin: who changed what, with the values before and after."""
from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping
from typing import Any

import sqlalchemy.orm as so
from flask_login import current_user

from smsgw.models import AuditEntry


def jsonable(value: Any) -> Any:
    """``value`` with decimals, dates and nested containers made JSON-safe."""
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(item) for item in value]
    return value


def snapshot(row: Any, fields: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """The named attributes of ``row`` as a JSON-safe dict."""
    return {name: jsonable(getattr(row, name)) for name in fields}


def changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the keys whose values differ, from each side."""
    keys = [key for key in after if before.get(key) != after.get(key)]
    return {key: before.get(key) for key in keys}, {key: after[key] for key in keys}


def record(
    db: so.Session,
    action: str,
    entity: str,
    entity_id: Any = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Add one audit entry by the signed-in operator (the caller commits with the change)."""
    entry = AuditEntry(
        user_id=current_user.id if current_user.is_authenticated else None,
        actor=(current_user.email if current_user.is_authenticated else "anonymous")[:80],
        action=action[:40],
        entity=entity[:40],
        entity_id=None if entity_id is None else str(entity_id)[:40],
        before=jsonable(before) if before is not None else None,
        after=jsonable(after) if after is not None else None,
    )
    db.add(entry)
    return entry
