"""The bargaining report kept in ``report_cache`` until the data it reads changes.

Computing the report reads every sale, price, order and message: seconds on a real
database. The admin's analytics page and its plots used to compute it once each per view;
now it is computed once per change of its inputs. The fingerprint (row counts, latest ids,
latest change times and status counts of the tables ``report.load_inputs`` reads, plus the
local date, since the report depends on "today") is cheap to read; only when it differs
from the stored one is the report computed again.

The report is computed in a read-only session (on SQLite it never takes the write lock,
so a farmer's USSD hop never waits for it) and stored afterwards in a short write
transaction of its own: a deferred SQLite transaction that has read for seconds and then
writes fails with "database is locked" if anyone wrote meanwhile. Nothing here imports
Flask: the scheduler or the CLI can fill the cache as well as a web request.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from smsgw.db import Database, utcnow
from smsgw.models import (
    AuditEntry,
    Commitment,
    Commodity,
    CommodityAlias,
    Contact,
    GroupOrder,
    InboundMessage,
    Market,
    Membership,
    OutboundMessage,
    PriceObservation,
    ProducerGroup,
    ReportCache,
    RolloutUnit,
    RolloutWave,
    SaleReport,
    Subscription,
    Unit,
    UssdSession,
)
from smsgw.models.catalog import Grade

log = logging.getLogger(__name__)

# Part of every fingerprint: bump it when the report's computation or shape changes, so
# a deploy does not serve reports computed by the old code.
VERSION = 2


def cache_key(freq: str, code: str) -> str:
    """The cache row of the report per ``freq`` of one commodity (``code``) or all ("")."""
    return f"bargaining:{freq}:{code}"


def _status_counts(column: Any, values: tuple[str, ...]) -> list[Any]:
    """How many rows have each of ``values`` (a status change moves a row between counts)."""
    return [sa.func.sum(sa.case((column == value, 1), else_=0)) for value in values]


def _aggregates() -> list[tuple[Any, list[Any]]]:
    """Per table the report reads: what changes when a row is added, removed or changed.

    Counts and the latest id see inserts and deletes; change times and status counts see
    the updates the report depends on (a price approved, an order settled, a message
    delivered, a USSD hop); the latest audit entry sees operators' edits of the catalog,
    people and groups, which carry no change time of their own.
    """
    def base(model: Any) -> list[Any]:
        """Row count and latest id: inserts and deletes."""
        return [sa.func.count(), sa.func.max(model.id)]

    return [
        (SaleReport, base(SaleReport)),
        (PriceObservation, [*base(PriceObservation), sa.func.max(PriceObservation.reviewed_at),
                            *_status_counts(PriceObservation.status, ("approved",))]),
        (Market, base(Market)), (Commodity, base(Commodity)), (CommodityAlias, base(CommodityAlias)),
        (Unit, base(Unit)), (Grade, base(Grade)),
        (Contact, [*base(Contact), sa.func.max(Contact.enrolled_at), sa.func.min(Contact.enrolled_at),
                   sa.func.count(Contact.enrolled_at), sa.func.max(Contact.consented_at),
                   sa.func.max(Contact.withdrawn_at), sa.func.sum(sa.func.coalesce(Contact.home_market_id, 0)),
                   *_status_counts(Contact.consent, ("granted", "withdrawn"))]),
        (ProducerGroup, base(ProducerGroup)), (Membership, base(Membership)), (Subscription, base(Subscription)),
        (GroupOrder, [*base(GroupOrder), sa.func.max(GroupOrder.closed_at), sa.func.max(GroupOrder.fulfilled_at),
                      sa.func.sum(GroupOrder.final_price),
                      *_status_counts(GroupOrder.status, ("closed", "fulfilled", "cancelled"))]),
        (Commitment, [*base(Commitment), sa.func.max(Commitment.updated_at)]),
        (InboundMessage, base(InboundMessage)),
        (OutboundMessage, [*base(OutboundMessage),
                           *_status_counts(OutboundMessage.status, ("sent", "delivered", "failed", "unknown"))]),
        (UssdSession, [*base(UssdSession), sa.func.max(UssdSession.updated_at), sa.func.max(UssdSession.ended_at),
                       *_status_counts(UssdSession.status, ("active",))]),
        (RolloutWave, [*base(RolloutWave), sa.func.sum(RolloutWave.enrolled)]), (RolloutUnit, base(RolloutUnit)),
        (AuditEntry, [sa.func.max(AuditEntry.id)]),
    ]


def fingerprint(conn: sa.Connection, today: dt.date) -> str:
    """What the data the report reads looks like now: another value means recompute."""
    values = [[str(v) for v in conn.execute(sa.select(*columns).select_from(model)).one()]
              for model, columns in _aggregates()]
    digest = hashlib.sha256(json.dumps(values).encode()).hexdigest()
    return f"v{VERSION} {today.isoformat()} {digest}"


def compute(conn: sa.Connection, freq: str, code: str, today: dt.date) -> dict[str, Any]:
    """The bargaining report from the database, as ``smsgw report bargaining`` computes it."""
    from smsgw.analytics import data
    from smsgw.analytics.config import AnalyticsConfig
    from smsgw.analytics.report import bargaining, load_inputs

    ids = [int(v) for v in data.find_commodities(conn, code)["id"]] if code else None
    cfg = AnalyticsConfig(freq=freq)
    return bargaining(load_inputs(conn, cfg, commodity_ids=ids), cfg, pd.Timestamp(today))


def cached_report(database: Database, freq: str, code: str, today: dt.date) -> dict[str, Any]:
    """The report of the data as it is now: from the cache, or computed and then cached."""
    key = cache_key(freq, code)
    with database.session(read_only=True) as session:
        conn = session.connection()
        # Taken before the report reads: if data changes while it computes, the stored
        # fingerprint is the older one and the next view computes again (never the reverse).
        current = fingerprint(conn, today)
        row = session.get(ReportCache, key)
        if row is not None and row.fingerprint == current:
            return decode(row.body)
        report = compute(conn, freq, code, today)
    store(database, key, current, encode(report))
    return report


def recent_report(database: Database, freq: str, code: str, max_age: dt.timedelta) -> dict[str, Any] | None:
    """The cached report if it was computed within ``max_age``, whatever changed since."""
    with database.session(read_only=True) as session:
        row = session.get(ReportCache, cache_key(freq, code))
        if row is None or utcnow() - row.computed_at > max_age:
            return None
        return decode(row.body)


def store(database: Database, key: str, fingerprint_: str, body: str) -> bool:
    """Write the cache row in a short transaction of its own; log and go on if that fails.

    Two requests computing at once both write: the last one wins, which is fine.
    """
    values = {"key": key, "fingerprint": fingerprint_, "body": body, "computed_at": utcnow()}
    try:
        with database.session() as session:
            dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
            upsert = dialect.insert(ReportCache).values(**values)
            session.execute(upsert.on_conflict_do_update(
                index_elements=[ReportCache.key], set_={k: v for k, v in values.items() if k != "key"}))
        return True
    except Exception:
        log.warning("analytics report not cached (key %s): it is computed again next time", key, exc_info=True)
        return False


# JSON: the report's plain part as ``smsgw report bargaining --format json`` prints it, and
# its plotting frames (``series``) column by column with their dtypes, so the plots drawn
# from a cached report are the plots of a fresh one.

def encode(report: dict[str, Any]) -> str:
    """The report as JSON text."""
    from smsgw.analytics.render import public

    return json.dumps({"report": public(report), "series": _encode(report.get("series", {}))},
                      ensure_ascii=False, default=_plain)


def decode(body: str) -> dict[str, Any]:
    """The report from its JSON text (``encode``'s inverse)."""
    stored = json.loads(body)
    return {**stored["report"], "series": _decode(stored["series"])}


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python number it holds (``json.dumps``'s fallback)."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON-able: {type(value).__name__}")


def _encode(value: Any) -> Any:
    """A frame, or a dict of them (per commodity), as JSON-able data."""
    if isinstance(value, pd.DataFrame):
        return {"frame": _frame_out(value)}
    if isinstance(value, dict):
        return {"items": {str(k): _encode(v) for k, v in value.items()}}
    raise TypeError(f"cannot cache a {type(value).__name__} in a report's series")


def _decode(value: dict[str, Any]) -> Any:
    """``_encode``'s inverse."""
    if "frame" in value:
        return _frame_in(value["frame"])
    return {k: _decode(v) for k, v in value["items"].items()}


def _frame_out(frame: pd.DataFrame) -> dict[str, Any]:
    """Columns with their dtypes and values; the index as period ordinals, or none (0..n-1)."""
    index = frame.index
    out: dict[str, Any] = {"rows": len(frame), "columns": list(frame.columns), "dtypes": [str(t) for t in frame.dtypes],
                           "data": [_column_out(frame[c]) for c in frame.columns]}
    if isinstance(index, pd.PeriodIndex):
        out["periods"] = {"freq": index.freqstr, "name": index.name, "ordinals": index.asi8.tolist()}
    elif not index.equals(pd.RangeIndex(len(frame))):
        raise TypeError(f"cannot cache a frame indexed by {type(index).__name__}")
    return out


def _column_out(column: pd.Series) -> list[Any]:
    """A column's values as Python scalars: missing as None, times as ISO text."""
    missing = column.isna().tolist()
    dated = pd.api.types.is_datetime64_any_dtype(column.dtype)
    return [None if gone else value.isoformat() if dated else value
            for value, gone in zip(column.astype(object).tolist(), missing, strict=True)]


def _frame_in(stored: dict[str, Any]) -> pd.DataFrame:
    """The frame ``_frame_out`` described, with the same dtypes and index."""
    columns = {}
    for name, dtype, values in zip(stored["columns"], stored["dtypes"], stored["data"], strict=True):
        raw = pd.Series(values, dtype=object)
        columns[name] = (pd.to_datetime(raw) if dtype.startswith("datetime64") else raw).astype(dtype)
    if "periods" in stored:
        periods = stored["periods"]
        index: pd.Index = pd.PeriodIndex.from_ordinals(periods["ordinals"], freq=periods["freq"], name=periods["name"])
    else:
        index = pd.RangeIndex(stored["rows"])
    return pd.DataFrame({name: column.set_axis(index) for name, column in columns.items()}, index=index)
