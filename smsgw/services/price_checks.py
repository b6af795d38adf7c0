"""Anomaly checks a price passes before farmers see it: robust history and other markets.

Every comparison is per base unit (per kg, per litre) within one market's currency, so a
price in 90 kg bags and one per kg compare, and two currencies never meet.

The rule, for a new price ``x`` of a commodity and kind in a market on a day:

- History: the market's approved prices of the same commodity, kind and base unit in the
  ``window_days`` up to that day. A sparse series (WFP's are monthly) has too few points
  there, so it falls back to the latest ``sparse_points`` within ``sparse_window_days``.
- Outlier against history when both ``|x - median| / (1.4826 * MAD) > z_threshold`` and
  ``|x / median - 1| > min_change``: the second condition keeps a flat series (MAD near 0)
  from flagging a trivial move.
- Outlier against other markets when at least ``min_markets`` other markets of the same
  country have prices that ISO week and ``|x / their median - 1| > cross_band``.
- Too little history (fewer than ``min_points``): held unless the source is trusted.
- Outliers are held, except in imported history: a row older than the commodity's price
  maximum age (``prices.price_max_age``) can never be shown to farmers as current, so an
  outlier there (a past price spike, a lean-season swing) is flagged in its status reason
  but approved, and the history stays whole for the analytics.
- In-range prices are approved only from trusted sources.

Bulk imports use :class:`PriceChecker`, which loads history once per (market, commodity,
kind) and a batch's cross-market weeks in a few queries, then decides row by row in memory.
"""

from __future__ import annotations

import bisect
import datetime as dt
import decimal
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw import config
from smsgw.models import Commodity, Market, PriceObservation, Unit
from smsgw.services.prices import price_max_age

# The status reason of an approved outlier in imported history: flagged, not held.
HISTORY_FLAG = "flagged, not held (history older than the price maximum age): "
MAD_SCALE = 1.4826  # makes the MAD estimate the standard deviation of a normal series
# Many OR-ed ranges in one statement stay well under SQLite's and psycopg's parameter limits.
QUERY_CHUNK = 200

GroupKey = tuple[int, int, str, str]  # market, commodity, kind, base unit
SeriesKey = tuple[int, int, str]  # market, commodity, kind
# country, currency, commodity, kind, base unit, ISO year, ISO week
WeekKey = tuple[str, str, int, str, str, int, int]


# The settings the check reads; their defaults are config's (``smsgw.config.defaults``).
SETTINGS = (
    "PRICE_AUTO_APPROVE_SOURCES",
    "PRICE_ANOMALY_Z",
    "PRICE_ANOMALY_MIN_CHANGE",
    "PRICE_CROSS_MARKET_BAND",
    "PRICE_HISTORY_DAYS",
    "PRICE_MIN_HISTORY",
)
_DEFAULTS = config.defaults()


@dataclass(frozen=True)
class Policy:
    """Thresholds and trusted sources of the check; ``from_settings`` reads the settings."""

    trusted_sources: frozenset[str] = frozenset(config.items(_DEFAULTS["PRICE_AUTO_APPROVE_SOURCES"]))
    z_threshold: float = _DEFAULTS["PRICE_ANOMALY_Z"]
    min_change: float = _DEFAULTS["PRICE_ANOMALY_MIN_CHANGE"]
    cross_band: float = _DEFAULTS["PRICE_CROSS_MARKET_BAND"]
    window_days: int = _DEFAULTS["PRICE_HISTORY_DAYS"]
    min_points: int = _DEFAULTS["PRICE_MIN_HISTORY"]
    sparse_window_days: int = 365
    sparse_points: int = 12
    min_markets: int = 3
    max_age_days: int = _DEFAULTS["PRICE_MAX_AGE_DAYS"]
    max_age_by_commodity: Any = _DEFAULTS["PRICE_MAX_AGE_BY_COMMODITY"]

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None = None) -> Policy:
        """The policy of ``settings`` as ``load_settings`` returns them.

        Without settings, or with a mapping that lacks some PRICE_* keys (a script, a
        test), the missing ones come from ``load_settings``: the environment, then the
        defaults, checked like every setting.
        """
        given = settings or {}
        if any(given.get(key) in (None, "") for key in SETTINGS):
            given = config.load_settings({key: given[key] for key in SETTINGS if given.get(key) not in (None, "")})
        return cls(
            trusted_sources=frozenset(config.items(given["PRICE_AUTO_APPROVE_SOURCES"])),
            z_threshold=float(given["PRICE_ANOMALY_Z"]),
            min_change=float(given["PRICE_ANOMALY_MIN_CHANGE"]),
            cross_band=float(given["PRICE_CROSS_MARKET_BAND"]),
            window_days=int(given["PRICE_HISTORY_DAYS"]),
            min_points=int(given["PRICE_MIN_HISTORY"]),
            max_age_days=int(given.get("PRICE_MAX_AGE_DAYS") or _DEFAULTS["PRICE_MAX_AGE_DAYS"]),
            max_age_by_commodity=given.get("PRICE_MAX_AGE_BY_COMMODITY") or "",
        )

    def max_age(self, commodity_code: str) -> dt.timedelta:
        """How old a price of the commodity may be and still be shown as current."""
        return price_max_age(commodity_code, {"PRICE_MAX_AGE_DAYS": self.max_age_days,
                                              "PRICE_MAX_AGE_BY_COMMODITY": self.max_age_by_commodity})

    def trusts(self, source: str) -> bool:
        """True when in-range prices from ``source`` may be published without review."""
        return source in self.trusted_sources


@dataclass(frozen=True)
class Candidate:
    """A price about to be stored, in the terms the check needs."""

    market_id: int
    commodity_id: int
    kind: str
    base: str
    day: dt.date
    per_base: float
    currency: str
    country: str
    market_name: str

    @property
    def series(self) -> SeriesKey:
        """The market's series this price belongs to, whatever its unit."""
        return (self.market_id, self.commodity_id, self.kind)

    @property
    def group(self) -> GroupKey:
        """The series and base unit: only these prices compare with each other."""
        return (self.market_id, self.commodity_id, self.kind, self.base)

    @property
    def week(self) -> WeekKey:
        """The country-wide comparison cell: currency, commodity, kind and base in one ISO week."""
        year, week, _ = self.day.isocalendar()
        return (self.country, self.currency, self.commodity_id, self.kind, self.base, year, week)


@dataclass(frozen=True)
class Decision:
    """The check's verdict: ``approved`` or ``pending``, and why when held."""

    status: str
    reason: str = ""

    @property
    def held(self) -> bool:
        """True when an operator must look at the price first."""
        return self.status == "pending"


def _money(value: float, currency: str, base: str) -> str:
    return f"{currency} {value:,.2f}/{base}"


def _pct(ratio: float) -> str:
    return f"{ratio * 100:+.0f}%"


def _chunks(items: Sequence[Any], size: int = QUERY_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class PriceChecker:
    """Decides many prices against history loaded once per series and kept in memory."""

    def __init__(self, session: so.Session, policy: Policy) -> None:
        self.session = session
        self.policy = policy
        # Sorted (day ordinal, price per base) of approved prices, per group.
        self._history: dict[GroupKey, list[tuple[int, float]]] = defaultdict(list)
        # The earliest day loaded from the database for each series (later days: all).
        self._loaded_from: dict[SeriesKey, int] = {}
        # Prices per market in each country-wide week cell (database and this batch).
        self._weeks: dict[WeekKey, dict[int, list[float]]] = {}
        self._codes: dict[int, str] = {}  # commodity codes, for their price maximum age

    @property
    def _reach(self) -> int:
        return max(self.policy.window_days, self.policy.sparse_window_days)

    def prepare(self, candidates: Sequence[Candidate]) -> None:
        """Load what ``candidates`` will be compared with, in a few queries per batch."""
        self._load_history(candidates)
        self._load_weeks(candidates)
        for candidate in candidates:
            self._weeks[candidate.week].setdefault(candidate.market_id, []).append(
                candidate.per_base
            )

    def _load_history(self, candidates: Sequence[Candidate]) -> None:
        needed: dict[SeriesKey, int] = {}
        for candidate in candidates:
            start = candidate.day.toordinal() - self._reach
            needed[candidate.series] = min(needed.get(candidate.series, start), start)
        ranges: list[tuple[SeriesKey, int, int | None]] = []
        for series, start in needed.items():
            loaded = self._loaded_from.get(series)
            if loaded is not None and start >= loaded:
                continue
            # A series seen before only lacks the days before what was loaded.
            ranges.append((series, start, loaded))
            self._loaded_from[series] = start
        touched: set[GroupKey] = set()
        observation = PriceObservation
        for chunk in _chunks(ranges):
            conditions = []
            for (market_id, commodity_id, kind), start, end in chunk:
                clause = sa.and_(
                    observation.market_id == market_id,
                    observation.commodity_id == commodity_id,
                    observation.kind == kind,
                    observation.observed_on >= dt.date.fromordinal(start),
                )
                if end is not None:
                    clause = sa.and_(clause, observation.observed_on < dt.date.fromordinal(end))
                conditions.append(clause)
            rows = self.session.execute(
                sa.select(
                    observation.market_id,
                    observation.commodity_id,
                    observation.kind,
                    Unit.base,
                    observation.observed_on,
                    observation.price_per_base,
                )
                .join(Unit, Unit.id == observation.unit_id)
                .where(observation.status == "approved", sa.or_(*conditions))
            )
            for market_id, commodity_id, kind, base, day, value in rows:
                group = (market_id, commodity_id, kind, base)
                self._history[group].append((day.toordinal(), float(value)))
                touched.add(group)
        for group in touched:
            self._history[group].sort()

    def _load_weeks(self, candidates: Sequence[Candidate]) -> None:
        wanted = {candidate.week for candidate in candidates} - self._weeks.keys()
        if not wanted:
            return
        for key in wanted:
            self._weeks[key] = {}
        commodities = sorted({key[2] for key in wanted})
        mondays = sorted({dt.date.fromisocalendar(key[5], key[6], 1) for key in wanted})
        observation = PriceObservation
        for chunk in _chunks(mondays):
            rows = self.session.execute(
                sa.select(
                    Market.country,
                    observation.currency,
                    observation.commodity_id,
                    observation.kind,
                    Unit.base,
                    observation.observed_on,
                    observation.market_id,
                    observation.price_per_base,
                )
                .join(Unit, Unit.id == observation.unit_id)
                .join(Market, Market.id == observation.market_id)
                .where(
                    observation.status == "approved",
                    observation.commodity_id.in_(commodities),
                    sa.or_(
                        *(
                            observation.observed_on.between(day, day + dt.timedelta(days=6))
                            for day in chunk
                        )
                    ),
                )
            )
            for country, currency, commodity_id, kind, base, day, market_id, value in rows:
                year, week, _ = day.isocalendar()
                cell = self._weeks.get((country, currency, commodity_id, kind, base, year, week))
                if cell is not None:
                    cell.setdefault(market_id, []).append(float(value))

    def _points(self, candidate: Candidate) -> tuple[list[float], str]:
        history = self._history.get(candidate.group, [])
        day = candidate.day.toordinal()
        end = bisect.bisect_right(history, (day, float("inf")))
        start = bisect.bisect_left(history, (day - self.policy.window_days, float("-inf")))
        points = [value for _, value in history[start:end]]
        if len(points) >= self.policy.min_points:
            return points, f"{self.policy.window_days}-day"
        start = bisect.bisect_left(history, (day - self.policy.sparse_window_days, float("-inf")))
        sparse = [value for _, value in history[start:end]][-self.policy.sparse_points :]
        return sparse, f"{round(self.policy.sparse_window_days / 30.4)}-month"

    def _cross_market(self, candidate: Candidate) -> tuple[float, int] | None:
        cell = self._weeks.get(candidate.week, {})
        others = [
            statistics.median(values)
            for market_id, values in cell.items()
            if market_id != candidate.market_id and values
        ]
        if len(others) < self.policy.min_markets:
            return None
        return statistics.median(others), len(others)

    def is_history(self, candidate: Candidate, as_of: dt.date) -> bool:
        """True when ``candidate`` is older on ``as_of`` than its commodity's price maximum age."""
        code = self._codes.get(candidate.commodity_id)
        if code is None:
            code = self.session.scalar(sa.select(Commodity.code).where(Commodity.id == candidate.commodity_id)) or ""
            self._codes[candidate.commodity_id] = code
        return as_of - candidate.day > self.policy.max_age(code)

    def decide(
        self,
        candidate: Candidate,
        *,
        trusted: bool,
        untrusted_reason: str = "source not trusted for automatic publication",
        history_as_of: dt.date | None = None,
    ) -> Decision:
        """Approve or hold ``candidate``, with a reason a person can act on when held.

        ``history_as_of`` (imports): an outlier older than the price maximum age on that day is
        approved with the flag in its reason instead of being held.
        """
        policy = self.policy
        reasons: list[str] = []
        points, window = self._points(candidate)
        x = candidate.per_base
        if len(points) >= policy.min_points:
            median = statistics.median(points)
            mad = statistics.median(abs(value - median) for value in points)
            change = x / median - 1
            spread = MAD_SCALE * mad
            score = abs(x - median) / spread if spread > 0 else float("inf")
            if score > policy.z_threshold and abs(change) > policy.min_change:
                detail = f"robust z {score:.1f}" if spread > 0 else "a flat series"
                reasons.append(
                    f"{_pct(change)} vs {window} median {_money(median, candidate.currency, candidate.base)}"
                    f" in {candidate.market_name} ({detail})"
                )
        cross = self._cross_market(candidate)
        if cross is not None:
            others, count = cross
            change = x / others - 1
            if abs(change) > policy.cross_band:
                reasons.append(
                    f"{_pct(change)} vs median {_money(others, candidate.currency, candidate.base)}"
                    f" of {count} other {candidate.country} markets that week"
                )
        if reasons:
            # Old history from a trusted source is published with its flag; an untrusted
            # source's outliers are held like any other, history or not.
            if trusted and history_as_of is not None and self.is_history(candidate, history_as_of):
                return Decision("approved", HISTORY_FLAG + "; ".join(reasons))
            return Decision("pending", "; ".join(reasons))
        if not trusted:
            if len(points) < policy.min_points:
                return Decision("pending", f"only {len(points)} earlier prices to compare with")
            return Decision("pending", untrusted_reason)
        return Decision("approved")

    def accept(self, candidate: Candidate) -> None:
        """Count an approved ``candidate`` as history for the prices checked after it."""
        bisect.insort(
            self._history[candidate.group], (candidate.day.toordinal(), candidate.per_base)
        )


def candidate_for(
    market: Market,
    commodity_id: int,
    kind: str,
    unit: Unit,
    day: dt.date,
    per_base: decimal.Decimal,
) -> Candidate:
    """A :class:`Candidate` from catalog rows (single prices: SMS, the admin)."""
    return Candidate(
        market_id=market.id,
        commodity_id=commodity_id,
        kind=kind,
        base=unit.base,
        day=day,
        per_base=float(per_base),
        currency=market.currency,
        country=market.country,
        market_name=market.name,
    )


def check_price(
    session: so.Session,
    candidate: Candidate,
    policy: Policy,
    *,
    trusted: bool,
    untrusted_reason: str = "source not trusted for automatic publication",
) -> Decision:
    """Decide one price against the database (a batch of one)."""
    checker = PriceChecker(session, policy)
    checker.prepare([candidate])
    return checker.decide(candidate, trusted=trusted, untrusted_reason=untrusted_reason)
