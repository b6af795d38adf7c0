"""Store or sell: has holding the harvest paid, in this market, in past years?

From a market's approved prices (monthly medians per base unit), for a harvest month H
and each sale month M after it: in how many past seasons the price in M beat the price
in H by more than the cost of storing (a share of the grain lost per month, plus an
optional cost per kg and month), the median net gain and the worst season.

Honesty rules, held by ``tests/test_storage.py``:

- only data available on the day asked is used: a season counts for a sale month only
  when that month had ended before the month of ``as_of``, and only seasons before the
  one being decided;
- a market needs ``min_years`` seasons for a month before it is spoken of;
- the backtest (``backtest``) replays every past season with only the data before its
  harvest, and counts how often the advice came true.

Harvest months come from ``content/seasons.toml`` (per country and commodity), never
from code. Everything below the database functions is pure, on ``Series``.
"""

from __future__ import annotations

import datetime as dt
import statistics
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw import config, resources
from smsgw.models import Commodity, Market, PriceObservation

# (year, month) -> median price per base unit that month.
Series = Mapping[tuple[int, int], float]
# Bins of stated odds for the calibration table: [low, high).
ODDS_BINS: tuple[tuple[float, float], ...] = ((0.0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.01))
# Advice to store needs more seasons that paid than not, and a median gain above zero.
STORE_SHARE = 0.5
# The weekday (Monday 0) on which harvest-month bulletins carry the storage line.
BULLETIN_WEEKDAY = 3


@dataclass(frozen=True)
class StoragePolicy:
    """The cost of storing and how much history is needed (settings ``STORAGE_*``)."""

    loss_pct_month: float = float(config.defaults()["STORAGE_LOSS_PCT_MONTH"])
    cost_per_kg_month: Mapping[str, float] = field(default_factory=dict)
    min_years: int = int(config.defaults()["STORAGE_MIN_YEARS"])
    max_months: int = int(config.defaults()["STORAGE_MAX_MONTHS"])

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> StoragePolicy:
        """The policy in ``settings`` (defaults for anything missing)."""
        settings = settings or {}
        costs = {}
        for item in config.items(settings.get("STORAGE_COST_PER_KG_MONTH", "")):
            currency, _, amount = item.partition(":")
            costs[currency.strip().upper()] = float(amount)
        return cls(
            loss_pct_month=float(settings.get("STORAGE_LOSS_PCT_MONTH", cls.loss_pct_month)),
            cost_per_kg_month=costs,
            min_years=int(settings.get("STORAGE_MIN_YEARS", cls.min_years)),
            max_months=int(settings.get("STORAGE_MAX_MONTHS", cls.max_months)),
        )

    def net_gain(self, harvest_price: float, sale_price: float, months: int, currency: str = "") -> float:
        """Gain of storing ``months`` against selling at harvest, as a share of the harvest price.

        What is left to sell shrinks by the loss per month; the cost per kg and month is
        paid on what was stored. 0.18 is +18 %.
        """
        kept = max(0.0, 1.0 - self.loss_pct_month / 100.0 * months)
        cost = self.cost_per_kg_month.get(currency.upper(), 0.0) * months
        return (sale_price * kept - cost) / harvest_price - 1.0


@dataclass(frozen=True)
class MonthEvidence:
    """Storing from harvest month ``harvest`` to sale month ``sale`` in past seasons."""

    harvest: int
    sale: int
    months: int
    gains: Mapping[int, float]  # season (year of the harvest) -> net gain

    @property
    def years(self) -> int:
        """Seasons with both prices."""
        return len(self.gains)

    @property
    def paid(self) -> int:
        """Seasons in which storing beat selling at harvest after its costs."""
        return sum(1 for gain in self.gains.values() if gain > 0)

    @property
    def share(self) -> float:
        """``paid / years`` (0 without seasons)."""
        return self.paid / self.years if self.years else 0.0

    @property
    def median_gain(self) -> float:
        """Median net gain over the seasons."""
        return float(statistics.median(self.gains.values())) if self.gains else 0.0

    @property
    def worst_gain(self) -> float:
        """The worst season's net gain."""
        return min(self.gains.values()) if self.gains else 0.0

    @property
    def worst_year(self) -> int | None:
        """The season of ``worst_gain``."""
        return min(self.gains, key=lambda year: self.gains[year]) if self.gains else None


@dataclass(frozen=True)
class Advice:
    """What the evidence says on one day: ``store`` (to ``best.sale``), ``sell`` or ``thin``.

    ``thin``: no sale month has ``min_years`` seasons; ``years`` is the most any has.
    ``no_season``: no harvest months are known for the commodity in this country.
    """

    verdict: str
    harvest: int | None
    best: MonthEvidence | None
    months: tuple[MonthEvidence, ...] = ()
    years: int = 0
    need: int = 0


def _shift(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def decision_harvest(harvest_months: Sequence[int], as_of: dt.date) -> tuple[int, int] | None:
    """The harvest (season year, month) a question on ``as_of`` is about.

    In a harvest month, that month; otherwise the next harvest month to come.
    """
    if not harvest_months:
        return None
    if as_of.month in harvest_months:
        return as_of.year, as_of.month
    for ahead in range(1, 13):
        year, month = _shift(as_of.year, as_of.month, ahead)
        if month in harvest_months:
            return year, month
    return None


def evidence(
    series: Series,
    harvest: int,
    season: int,
    as_of: dt.date,
    policy: StoragePolicy,
    currency: str = "",
) -> list[MonthEvidence]:
    """Per sale month after ``harvest``: the net gains of past seasons (before ``season``).

    A season counts for a sale month only when that month ended before ``as_of``'s month
    began: only what was known on ``as_of``.
    """
    known_before = (as_of.year, as_of.month)
    years = sorted({year for year, month in series if month == harvest and year < season})
    found = []
    for months in range(1, policy.max_months + 1):
        gains: dict[int, float] = {}
        for year in years:
            sale = _shift(year, harvest, months)
            if sale >= known_before or sale not in series:
                continue
            gains[year] = policy.net_gain(series[(year, harvest)], series[sale], months, currency)
        found.append(MonthEvidence(harvest, _shift(2000, harvest, months)[1], months, gains))
    return found


def advise(
    series: Series,
    harvest_months: Sequence[int],
    as_of: dt.date,
    policy: StoragePolicy,
    currency: str = "",
) -> Advice:
    """The advice on ``as_of``: the sale month with the best median gain among those with enough years."""
    decision = decision_harvest(harvest_months, as_of)
    if decision is None:
        return Advice("no_season", None, None)
    season, harvest = decision
    months = tuple(evidence(series, harvest, season, as_of, policy, currency))
    enough = [m for m in months if m.years >= policy.min_years]
    most = max((m.years for m in months), default=0)
    if not enough:
        return Advice("thin", harvest, None, months, most, policy.min_years)
    best = max(enough, key=lambda m: (round(m.median_gain, 9), m.share, -m.months))
    verdict = "store" if best.median_gain > 0 and best.share > STORE_SHARE else "sell"
    return Advice(verdict, harvest, best, months, best.years, policy.min_years)


# ------------------------------------------------------------------- the backtest

@dataclass(frozen=True)
class Decision:
    """One replayed season: the advice at its harvest and what then happened."""

    season: int
    harvest: int
    verdict: str
    sale: int
    stated: float  # the stated odds: share of past seasons that paid, for the advised month
    gain: float  # what storing to the advised month gained that season
    paid: bool

    @property
    def followed_gain(self) -> float:
        """Net gain of following the advice: storing when told to, else 0 (sold at harvest)."""
        return self.gain if self.verdict == "store" else 0.0


@dataclass(frozen=True)
class Backtest:
    """Every replayed season of one market, and the summary the report prints."""

    decisions: tuple[Decision, ...]

    @property
    def stores(self) -> list[Decision]:
        """Seasons advised to store."""
        return [d for d in self.decisions if d.verdict == "store"]

    @property
    def right(self) -> int:
        """Advice that came true: told to store and storing paid, or told to sell and it did not."""
        return sum(1 for d in self.decisions if d.paid == (d.verdict == "store"))

    @property
    def store_right(self) -> int:
        """Seasons told "store until M" in which it paid."""
        return sum(1 for d in self.stores if d.paid)

    @property
    def mean_followed(self) -> float | None:
        """Mean net gain of following the advice against selling at harvest (0)."""
        return statistics.fmean(d.followed_gain for d in self.decisions) if self.decisions else None

    @property
    def mean_always_store(self) -> float | None:
        """Mean net gain of always storing to the advised month."""
        return statistics.fmean(d.gain for d in self.decisions) if self.decisions else None


def backtest(
    series: Series,
    harvest_months: Sequence[int],
    policy: StoragePolicy,
    currency: str = "",
) -> Backtest:
    """Replay each season with only the prices known at its harvest (``as_of`` = harvest month's 1st).

    A season is scored when the advice named a month (``store`` or ``sell``) and both
    prices of that season are known.
    """
    decisions = []
    seasons = sorted({year for year, month in series if month in harvest_months})
    for season in seasons:
        for harvest in sorted(set(harvest_months)):
            if (season, harvest) not in series:
                continue
            as_of = dt.date(season, harvest, 1)
            advice = advise(series, [harvest], as_of, policy, currency)
            if advice.best is None:
                continue
            sale = _shift(season, harvest, advice.best.months)
            if sale not in series:
                continue
            gain = policy.net_gain(series[(season, harvest)], series[sale], advice.best.months, currency)
            decisions.append(
                Decision(season, harvest, advice.verdict, advice.best.sale, advice.best.share, gain, gain > 0)
            )
    return Backtest(tuple(decisions))


@dataclass(frozen=True)
class CalibrationRow:
    """Stated odds in [low, high) against how often storing to the advised month paid."""

    low: float
    high: float
    count: int
    stated: float | None
    observed: float | None


def calibration(decisions: Iterable[Decision]) -> list[CalibrationRow]:
    """The calibration table over ``decisions`` (of one or many markets)."""
    chosen = list(decisions)
    rows = []
    for low, high in ODDS_BINS:
        inside = [d for d in chosen if low <= d.stated < high]
        rows.append(
            CalibrationRow(
                low,
                min(high, 1.0),
                len(inside),
                statistics.fmean(d.stated for d in inside) if inside else None,
                sum(d.paid for d in inside) / len(inside) if inside else None,
            )
        )
    return rows


# --------------------------------------------------------------- content and data

@cache
def _calendar(path: Path) -> dict[tuple[str, str], tuple[int, ...]]:
    data = tomllib.loads(path.read_text("utf-8")) if path.is_file() else {}
    calendar = {}
    for item in data.get("season", []):
        months = tuple(sorted({int(m) for m in item["harvest_months"]}))
        if any(not 1 <= m <= 12 for m in months):
            raise ValueError(f"{path.name}: harvest months of {item['commodity']} must be 1 to 12")
        calendar[(str(item["country"]).upper(), str(item["commodity"]).lower())] = months
    return calendar


def seasons_path() -> Path:
    """``content/seasons.toml``."""
    return resources.content_dir() / "seasons.toml"


def harvest_calendar(path: Path | None = None) -> dict[tuple[str, str], tuple[int, ...]]:
    """(country, commodity code) -> harvest months, from ``content/seasons.toml``."""
    return dict(_calendar(path or seasons_path()))


def harvest_months(country: str, commodity: Commodity | str, path: Path | None = None) -> tuple[int, ...]:
    """The harvest months of ``commodity`` in ``country`` (empty when none are recorded)."""
    code = commodity if isinstance(commodity, str) else commodity.code
    return _calendar(path or seasons_path()).get((country.upper(), code.lower()), ())


def monthly_medians(
    session: so.Session, commodity: Commodity, market: Market, kind: str = "wholesale"
) -> dict[tuple[int, int], float]:
    """The market's approved prices of ``commodity``, as monthly medians per base unit."""
    rows = session.execute(
        sa.select(PriceObservation.observed_on, PriceObservation.price_per_base).where(
            PriceObservation.commodity_id == commodity.id,
            PriceObservation.market_id == market.id,
            PriceObservation.kind == kind,
            PriceObservation.status == "approved",
        )
    )
    months: dict[tuple[int, int], list[float]] = {}
    for day, per_base in rows:
        months.setdefault((day.year, day.month), []).append(float(per_base))
    return {key: float(statistics.median(values)) for key, values in months.items()}


def markets_for(session: so.Session, commodity: Commodity) -> list[Market]:
    """Markets with approved wholesale prices of ``commodity``, by name."""
    query = (
        sa.select(Market)
        .where(
            sa.exists().where(
                PriceObservation.market_id == Market.id,
                PriceObservation.commodity_id == commodity.id,
                PriceObservation.kind == "wholesale",
                PriceObservation.status == "approved",
            )
        )
        .order_by(Market.name)
    )
    return list(session.scalars(query))


def advice_for(
    session: so.Session,
    commodity: Commodity,
    market: Market,
    as_of: dt.date,
    settings: Mapping[str, Any] | None = None,
    calendar_path: Path | None = None,
) -> Advice:
    """``advise`` for one market from the database."""
    months = harvest_months(market.country, commodity, calendar_path)
    if not months:
        return Advice("no_season", None, None)
    policy = StoragePolicy.from_settings(settings)
    return advise(monthly_medians(session, commodity, market), months, as_of, policy, market.currency)


# ------------------------------------------------------------------------ reports

@dataclass(frozen=True)
class MarketReport:
    """One market's evidence today and its backtest, for ``smsgw report storage`` and the admin."""

    market: Market
    harvest_months: tuple[int, ...]
    series: Mapping[tuple[int, int], float]
    advice: Advice
    backtest: Backtest


def find_commodity(session: so.Session, text: str) -> Commodity | None:
    """A commodity by code, English name or alias (any case)."""
    from smsgw.models import CommodityAlias

    word = text.strip().lower()
    for commodity in session.scalars(sa.select(Commodity).order_by(Commodity.id)):
        if word in (commodity.code.lower(), commodity.name("en").lower()):
            return commodity
    alias = session.scalar(sa.select(CommodityAlias).where(sa.func.lower(CommodityAlias.alias) == word))
    return alias.commodity if alias is not None else None


def find_market(session: so.Session, text: str) -> Market | None:
    """A market by code, name or alias (any case)."""
    from smsgw.models import MarketAlias

    word = text.strip().lower()
    for market in session.scalars(sa.select(Market).order_by(Market.id)):
        if word in (market.code.lower(), market.name.lower(), market.short_name.lower()):
            return market
    alias = session.scalar(sa.select(MarketAlias).where(sa.func.lower(MarketAlias.alias) == word))
    return alias.market if alias is not None else None


def market_reports(
    session: so.Session,
    commodity: Commodity,
    markets: Sequence[Market],
    as_of: dt.date,
    policy: StoragePolicy,
    harvest: Sequence[int] | None = None,
    calendar_path: Path | None = None,
) -> list[MarketReport]:
    """Evidence on ``as_of`` and the backtest for each market (``harvest`` overrides the content file)."""
    reports = []
    for market in markets:
        months = tuple(harvest) if harvest else harvest_months(market.country, commodity, calendar_path)
        series = monthly_medians(session, commodity, market)
        if months:
            advice = advise(series, months, as_of, policy, market.currency)
            tested = backtest(series, months, policy, market.currency)
        else:
            advice, tested = Advice("no_season", None, None), Backtest(())
        reports.append(MarketReport(market, months, series, advice, tested))
    return reports


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f}%"


def _months(months: Iterable[int]) -> str:
    names = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    return ",".join(names[m - 1] for m in months) or "-"


def _verdict(advice: Advice) -> str:
    best = advice.best
    if best is None:
        return "no harvest months recorded" if advice.verdict == "no_season" else (
            f"not enough history ({advice.years} of {advice.need} seasons)"
        )
    word = "store" if advice.verdict == "store" else "sell at harvest"
    return (
        f"{word}: {_months([best.harvest])} to {_months([best.sale])} paid {best.paid} of {best.years}, "
        f"median {_pct(best.median_gain)}, worst {_pct(best.worst_gain)} ({best.worst_year})"
    )


def describe_policy(policy: StoragePolicy) -> str:
    """One line: the storage costs and history rule behind a report."""
    costs = ", ".join(f"{c} {v:g}/kg/month" for c, v in sorted(policy.cost_per_kg_month.items())) or "none"
    return (
        f"storage loss {policy.loss_pct_month:g}%/month, cost {costs}, at least {policy.min_years} seasons, "
        f"at most {policy.max_months} months stored; approved wholesale prices, monthly medians per base unit"
    )


def render_evidence(
    commodity: Commodity, reports: Sequence[MarketReport], as_of: dt.date, policy: StoragePolicy
) -> str:
    """The evidence as it stands on ``as_of``, per market and sale month."""
    lines = [f"Store or sell: {commodity.code} on {as_of.isoformat()} ({describe_policy(policy)})", ""]
    for report in reports:
        advice = report.advice
        lines.append(
            f"{report.market.name} ({report.market.country}), harvest {_months(report.harvest_months)}: "
            f"{_verdict(advice)}"
        )
        for month in advice.months:
            if not month.years:
                continue
            lines.append(
                f"  {_months([month.harvest])}->{_months([month.sale])} ({month.months} mo): "
                f"paid {month.paid}/{month.years}, median {_pct(month.median_gain)}, "
                f"worst {_pct(month.worst_gain)} ({month.worst_year})"
            )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def render_backtest(commodity: Commodity, reports: Sequence[MarketReport], policy: StoragePolicy) -> str:
    """The backtest per market and the calibration of the stated odds over all of them."""
    lines = [
        f"Store or sell, backtest: {commodity.code} ({describe_policy(policy)})",
        "Each season is replayed at its harvest with only the prices known then; the advice is the sale",
        "month with the best median net gain in earlier seasons (store when it paid in more than half).",
        "",
        (
            f"{'market':<28} {'harvest':<12} {'seasons':>7} {'store':>6} {'paid':>5} {'right':>6} "
            f"{'follow':>8} {'always':>8}"
        ),
    ]
    decisions: list[Decision] = []
    thin = [report.market.name for report in reports if not report.backtest.decisions]
    for report in reports:
        tested = report.backtest
        decisions.extend(tested.decisions)
        if not tested.decisions:
            continue
        lines.append(
            f"{report.market.name[:28]:<28} {_months(report.harvest_months):<12} {len(tested.decisions):>7} "
            f"{len(tested.stores):>6} {tested.store_right:>5} {tested.right:>6} "
            f"{_pct(tested.mean_followed):>8} {_pct(tested.mean_always_store):>8}"
        )
    total = Backtest(tuple(decisions))
    lines += [
        (
            f"{'all markets':<28} {'':<12} {len(total.decisions):>7} {len(total.stores):>6} {total.store_right:>5} "
            f"{total.right:>6} {_pct(total.mean_followed):>8} {_pct(total.mean_always_store):>8}"
        ),
        f"{len(thin)} market(s) without a season that had enough earlier seasons: {', '.join(thin) or '-'}",
        "",
        "seasons: replayed harvests with advice; store: advised to store; paid: of those, storing paid;",
        "right: advice came true (store and it paid, or sell and storing would not have);",
        "follow: mean net gain of following the advice against selling at harvest; always: of always storing",
        "to the advised month.",
        "",
        "Calibration (all markets): stated odds = share of earlier seasons in which the advised month paid",
        f"{'stated odds':<12} {'seasons':>7} {'mean stated':>12} {'observed':>9}",
    ]
    for row in calibration(decisions):
        stated = "-" if row.stated is None else f"{row.stated:.2f}"
        observed = "-" if row.observed is None else f"{row.observed:.2f}"
        lines.append(f"{row.low:.1f}-{row.high:.1f}{'':<5} {row.count:>7} {stated:>12} {observed:>9}")
    return "\n".join(lines) + "\n"
