"""Engagement: active subscribers, message delivery, informed sales, sale reporting, USSD drop-off."""
from __future__ import annotations

import numpy as np
import pandas as pd

from smsgw.analytics.cells import clusters_of, mean_interval
from smsgw.analytics.config import AnalyticsConfig
from smsgw.analytics.indicators import Level
from smsgw.analytics.stats import wilson
from smsgw.models import UssdSession

FINAL = ("delivered", "failed", "unknown")
DROPPED = ("Incomplete", "Failed")
TOKEN = r"[a-z0-9-]+"


def active_subscribers(events: dict[str, pd.DataFrame], sales: pd.DataFrame, people: pd.DataFrame,
                       today: pd.Timestamp, cfg: AnalyticsConfig) -> Level:
    """Subscribers (not opted out) with any SMS, USSD or sale in the last ``active_days`` days."""
    subscribed = set(events["subscriptions"]["farmer"]) - set(people.loc[people["consent"] == "withdrawn", "farmer"])
    if not subscribed:
        return Level(None, reason="no subscribers")
    since = today - pd.Timedelta(days=cfg.active_days)
    touched = pd.concat([
        events["inbound"].loc[events["inbound"]["day"] > since, "farmer"],
        events["ussd"].loc[events["ussd"]["day"] > since, "farmer"],
        sales.loc[sales["day"] > since, "farmer"],
    ]).dropna()
    active = len(subscribed & set(touched.astype("int64")))
    lo, hi = wilson(active, len(subscribed), cfg.level)
    return Level(active / len(subscribed), (lo, hi), len(subscribed), 0, "Wilson score interval",
                 detail={"active": active, "subscribers": len(subscribed)})


def message_delivery(events: dict[str, pd.DataFrame], cfg: AnalyticsConfig) -> tuple[Level, pd.Series]:
    """Delivered over finally settled outbound messages (delivered, failed, unknown); per period too."""
    out = events["outbound"]
    final = out[out["status"].isin(FINAL)]
    if final.empty:
        return Level(None, reason="no outbound message has a final status yet",
                     detail={"pending": len(out)}), pd.Series(dtype="float64")
    delivered = int((final["status"] == "delivered").sum())
    lo, hi = wilson(delivered, len(final), cfg.level)
    periods = final.assign(period=final["day"].dt.to_period(cfg.period_code), ok=final["status"] == "delivered")
    by_period = periods.groupby("period")["ok"].agg(["mean", "size"])
    series = by_period["mean"].where(by_period["size"] >= cfg.min_sales)
    return Level(delivered / len(final), (lo, hi), len(final), 0, "Wilson score interval",
                 detail={"pending": int(len(out) - len(final))}), series


def informed_sales(frame: pd.DataFrame, events: dict[str, pd.DataFrame], cfg: AnalyticsConfig,
                   rng: np.random.Generator) -> tuple[Level, pd.Series]:
    """Share of sales with a price query (SMS or USSD) or delivered bulletin for the commodity in the 3 days before."""
    if frame.empty:
        return Level(None, reason="no sales with a reference"), pd.Series(dtype="float64")
    inbound = events["inbound"]
    queries = inbound[(inbound["command"] == "price") & inbound["farmer"].notna()]
    # Which commodity a query asked about: any word of the text that is a commodity alias.
    words = queries.assign(word=queries["text"].str.lower().str.findall(TOKEN)).explode("word")
    asked = words.merge(events["aliases"], left_on="word", right_on="alias")[["farmer", "commodity", "day"]]
    # USSD: the session records the commodities whose price screen it showed.
    ussd = events["ussd"][events["ussd"]["farmer"].notna()]
    viewed = (
        ussd.assign(commodity=ussd["state"].str.get(UssdSession.PRICES_VIEWED))
        .explode("commodity")
        .dropna(subset=["commodity"])
    )
    viewed = viewed.astype({"commodity": asked["commodity"].dtype})
    out = events["outbound"]
    bulletins = out[(out["purpose"] == "bulletin") & (out["status"] == "delivered") & out["farmer"].notna()]
    # A daily bulletin carries the prices of every commodity the farmer subscribes to.
    told = bulletins[["farmer", "day"]].merge(events["subscriptions"], on="farmer")[["farmer", "commodity", "day"]]
    infos = pd.concat([asked, viewed[["farmer", "commodity", "day"]], told], ignore_index=True).astype(
        {"farmer": "int64"}
    )
    infos = infos.assign(info_day=infos["day"]).sort_values("day")
    left = frame[["farmer", "commodity", "day"]].astype({"farmer": "int64"}).reset_index().sort_values("day")
    found = pd.merge_asof(left, infos, on="day", by=["farmer", "commodity"], direction="backward",
                          tolerance=pd.Timedelta(days=cfg.informed_days))
    informed = found.set_index("index")["info_day"].reindex(frame.index).notna().astype("float64")
    mean, lo, hi, method, g = mean_interval(
        informed, pd.Series(1.0, index=frame.index), clusters_of(frame), cfg, rng)
    per = (
        pd.DataFrame({"period": frame["period"].to_numpy(), "informed": informed.to_numpy()})
        .groupby("period")["informed"]
        .agg(["mean", "size"])
    )
    series = per["mean"].where(per["size"] >= cfg.min_sales)
    ci = (max(lo, 0.0), min(hi, 1.0)) if lo is not None and hi is not None else None
    return Level(mean, ci, len(frame), g, method), series


def reporting_rate(
    sales: pd.DataFrame, people: pd.DataFrame, today: pd.Timestamp, cfg: AnalyticsConfig
) -> tuple[Level, pd.Series]:
    """Share of enrolled farmers who reported a sale in the last ``active_days``; per period too."""
    enrolled = people[people["enrolled"].notna() & (people["consent"] != "withdrawn")]
    if enrolled.empty:
        return Level(None, reason="no enrolled farmers"), pd.Series(dtype="float64")
    since = today - pd.Timedelta(days=cfg.active_days)
    reporters = set(sales.loc[sales["day"] > since, "farmer"])
    k = len(set(enrolled["farmer"]) & reporters)
    lo, hi = wilson(k, len(enrolled), cfg.level)
    # Only sales made while enrolled count: a farmer reporting before enrolment is not in the base.
    since_enrolled = sales[["farmer", "day"]].merge(enrolled[["farmer", "enrolled"]], on="farmer")
    since_enrolled = since_enrolled[since_enrolled["day"] >= since_enrolled["enrolled"]]
    periods = since_enrolled.assign(period=since_enrolled["day"].dt.to_period(cfg.period_code))
    reporting = periods.groupby("period")["farmer"].nunique()
    ends = reporting.index.to_timestamp(how="end").normalize()
    # Denominator per period: farmers enrolled by the period's end.
    base = np.searchsorted(np.sort(enrolled["enrolled"].to_numpy()), ends.to_numpy(), side="right")
    series = pd.Series(reporting.to_numpy() / np.maximum(base, 1), index=reporting.index).where(
        base >= cfg.min_clusters
    )
    return Level(k / len(enrolled), (lo, hi), len(enrolled), 0, "Wilson score interval",
                 detail={"reporting": k, "enrolled": len(enrolled)}), series


def ussd_dropoff(events: dict[str, pd.DataFrame], cfg: AnalyticsConfig) -> Level:
    """Share of USSD sessions the caller dropped, with the screen each was left on."""
    ussd = events["ussd"]
    ended = ussd[ussd["status"] != "active"]
    if ended.empty:
        return Level(None, reason="no finished USSD session")
    dropped = ended[ended["status"].isin(DROPPED)]
    # A half-done flow is kept in state["resume"] as frames [screen, params]; its last frame
    # is the screen the caller left. Sessions without it were left on a menu.
    screens = dropped["state"].str.get("resume").str.get(-1).str.get(0).fillna("menu (no flow started)")
    lo, hi = wilson(len(dropped), len(ended), cfg.level)
    return Level(len(dropped) / len(ended), (lo, hi), len(ended), 0, "Wilson score interval",
                 detail={"dropped_by_screen": {str(k): int(v) for k, v in screens.value_counts().items()}})
