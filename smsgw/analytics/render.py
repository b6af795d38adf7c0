"""Render reports as text for a terminal, JSON for programs and CSV for spreadsheets."""
from __future__ import annotations

import io
import json
from typing import Any

from smsgw.csv_safe import SafeDictWriter

LABELS = {
    "price_share": "Farmer price share (PRIMARY): price / reference, geometric mean",
    "log_discount": "Discount to reference, ln(reference / price)",
    "net_share": "Net-of-transport price share",
    "pass_through": "Pass-through: d ln(price) / d ln(reference)",
    "buyer_hhi": "Buyer concentration: HHI over buyer types (volume)",
    "group_premium_reference": "Group orders: premium over the reference",
    "group_premium_members": "Group orders: premium over members' own sales, same weeks",
    "group_delivery_rate": "Group orders settled as agreed (price, >= 90 % quantity)",
    "group_volume_share": "Share of volume sold through group orders",
    "active_subscribers": "Active subscribers (any use in 30 days)",
    "message_delivery_rate": "SMS delivery rate (delivered / final)",
    "informed_sales": "Sales after a price query or delivered bulletin (3 days)",
    "sale_reporting_rate": "Enrolled farmers reporting a sale (30 days)",
    "ussd_dropoff": "USSD sessions dropped by the caller",
}
CSV_FIELDS = ["indicator", "dimension", "cell", "value", "ci_lo", "ci_hi", "n", "clusters", "slope_per_year",
              "slope_lo", "slope_hi", "q_value", "trend_points", "state", "reason", "method"]


def _f(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ci(ci: Any, digits: int = 3) -> str:
    return "" if not ci or ci[0] is None else f"[{_f(ci[0], digits)}, {_f(ci[1], digits)}]"


def public(report: dict[str, Any]) -> dict[str, Any]:
    """The report without its plotting frames (what JSON carries)."""
    return {k: v for k, v in report.items() if k != "series"}


def render_json(report: dict[str, Any]) -> str:
    """The report as indented JSON."""
    return json.dumps(public(report), indent=2, ensure_ascii=False)


def render_csv(report: dict[str, Any]) -> str:
    """One CSV row per indicator and cell (the enrolment effect as its own row)."""
    out = io.StringIO()
    writer = SafeDictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in report["rows"]:
        tr, ci = row["trend"], row["ci"] or [None, None]
        tci = tr["ci"] or [None, None]
        writer.writerow({
            "indicator": row["indicator"], "dimension": row["dimension"], "cell": row["cell"], "value": row["value"],
            "ci_lo": ci[0], "ci_hi": ci[1], "n": row["n"], "clusters": row["clusters"],
            "slope_per_year": tr["slope_per_year"], "slope_lo": tci[0], "slope_hi": tci[1], "q_value": tr["q_value"],
            "trend_points": tr["n_points"], "state": row["state"], "reason": row["reason"], "method": row["method"],
        })
    effect = report["enrolment"]
    eci = effect["ci_pct"] or [None, None]
    writer.writerow(
        {
            "indicator": "enrolment_effect_pct",
            "dimension": "all",
            "cell": "all",
            "value": effect["effect_pct"],
            "ci_lo": eci[0],
            "ci_hi": eci[1],
            "n": effect["post_sales"],
            "clusters": effect["clusters"],
            "state": effect["state"],
            "reason": effect["reason"],
            "method": effect["method"],
        }
    )
    return out.getvalue()


def render_text(report: dict[str, Any]) -> str:
    """A plain-text report for a terminal."""
    sales, s = report["sales"], report["settings"]
    lines = [report["title"] + f"  (as of {report['today']})", "",
             f"Primary indicator: farmer price share = {report['primary_definition']}.",
             f"Source: {report['source']}.",
             (f"Sales: {sales['total']} reported, {sales['with_reference']} with a reference "
             f"({sales['reference_from_nearest_market']} from the nearest market with a price).")]
    for reason, count in sales["excluded"].items():
        lines.append(f"  excluded {count}: {reason}")
    lines.append("States: " + ", ".join(f"{k} {v}" for k, v in report["states"].items()))
    lines.append(
        f"Rules: trend per {s['freq']} (Theil-Sen slope, Mann-Kendall test corrected for autocorrelation), "
        f"at least {s['min_points']} periods "
        f"of {s['min_sales']}+ sales, {s['min_clusters']}+ clusters; {s['level']:.0%} intervals; "
        f"Benjamini-Hochberg FDR {s['fdr']:.0%} across cells. Transport costs: {s['transport_costs']}."
    )
    if report.get("periods"):
        lines += [
            "",
            (
                f"Primary indicator per {s['freq']} (all sales; * = fewer than {s['min_sales']} sales, "
                "not used for the trend)"
            ),
            f"  {'period':<9} {'geo mean':>8} {'q1':>6} {'median':>6} {'q3':>6} {'n':>6}",
        ]
        lines += [f"  {p['period']:<9} {_f(p['geo_mean']):>8} {_f(p['q1']):>6} {_f(p['median']):>6} {_f(p['q3']):>6} "
                  f"{p['n']:>6}{'' if p['enough'] else ' *'}" for p in report["periods"]]
    header = f"  {'cell':<28} {'value':>7} {'95% interval':>17} {'n':>6} {'cl':>4}  {'trend/yr [95%]':<26} state"
    order = list(dict.fromkeys(row["indicator"] for row in report["rows"]))
    for indicator in order:
        lines += ["", LABELS.get(indicator, indicator), header]
        for row in (r for r in report["rows"] if r["indicator"] == indicator):
            tr = row["trend"]
            slope = "" if tr["slope_per_year"] is None else f"{tr['slope_per_year']:+.3f} {_ci(tr['ci'])}"
            cell = "all" if row["dimension"] == "all" else f"{row['dimension']}: {row['cell']}"
            lines.append(
                f"  {cell[:28]:<28} {_f(row['value']):>7} {_ci(row['ci']):>17} {row['n']:>6} {row['clusters']:>4}  "
                f"{slope:<26} {row['state']}" + (f" ({row['reason']})" if row["reason"] else "")
            )
            extra = _detail(row) if row["dimension"] == "all" else ""
            if extra:
                lines.append(f"  {'':<28} {extra}")
    lines += ["", *_effect_lines(report["enrolment"])]
    for design in report.get("rollouts", []):
        lines += ["", *_rollout_lines(design)]
    lines += ["", *_market_lines(report["market"])]
    return "\n".join(lines) + "\n"


def _detail(row: dict[str, Any]) -> str:
    d = row["detail"]
    if row["indicator"] == "price_share" and "median" in d:
        return f"median {d['median']:.3f}, quartiles {d['q1']:.3f} - {d['q3']:.3f}"
    if row["indicator"] == "buyer_hhi" and "volume_share" in d:
        shares = ", ".join(f"{k} {v:.0%}" for k, v in d["volume_share"].items())
        return f"{d['distinct_buyer_types']} buyer types; volume: {shares}"
    if row["indicator"] == "ussd_dropoff" and d.get("dropped_by_screen"):
        return "dropped on: " + ", ".join(f"{k} {v}" for k, v in d["dropped_by_screen"].items())
    if row["indicator"] == "net_share":
        return f"{d.get('excluded_cost_above_reference', 0)} sales left out: transport cost at or above the reference"
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in d.items() if isinstance(v, int))


def _rollout_lines(design: dict[str, Any]) -> list[str]:
    head = (f"Randomised rollout {design['rollout']!r} ({design['unit']}s drawn into waves, seed {design['seed']}): "
            f"{design['estimand']}")
    lines = [head]
    for wave in design["waves"]:
        lines.append(f"  wave {wave['wave']} from {wave['starts_on']}: {wave['units']} {design['unit']}s, "
                     f"{wave['farmers']} farmers, {wave['enrolled_before_start']} found the service before, "
                     f"{wave['enrolled']} enrolled now")
    return lines + _effect_lines(design["effect"], head=None)


def _effect_lines(effect: dict[str, Any], head: str | None = (
        "Effect of enrolment on the price share (enrolled vs not-yet-enrolled farmers, by enrolment-month cohort)")
) -> list[str]:
    top = [head] if head else []
    if effect["effect_pct"] is None:
        return [*top, f"  {effect['state']}: {effect['reason']}"]
    lines = [
        *top,
        f"  {effect['effect_pct']:+.1f}% {_ci(effect['ci_pct'], 1)}  {effect['state']}"
        + (f" ({effect['reason']})" if effect["reason"] else ""),
        (
            f"  {effect['treated_farmers']} enrolled and {effect['control_farmers']} comparison farmers, "
            f"{effect['cohorts']} cohorts, {effect['post_sales']} sales after enrolment, {effect['clusters']} "
            f"clusters; {effect['method']}"
        ),
    ]
    if effect.get("mde_pct") is not None:
        lines.append(f"  smallest effect detectable at 80% power with these data: {effect['mde_pct']:.1f}%")
    lines.append("  event study (months from enrolment; effect in logs; month 0 is partly before enrolment):")
    for e in effect["event_study"]:
        lines.append(f"    {e['event']:+d}: {_f(e['effect'])} {_ci([e['lo'], e['hi']])}  ({e['treated_sales']} sales)")
    pre = effect.get("pre_trend") or {}
    if pre.get("p_value") is not None:
        lines.append(
            f"  pre-trend test over {pre['leads']} months before enrolment: p = {pre['p_value']:.3f} "
            f"(equal leads p = {pre['p_joint']:.3f}, slope {pre['slope_per_month']:+.4f}/month p = "
            f"{pre['p_slope']:.3f}); " + ("REJECTS parallel trends: no verdict" if pre["rejects"] else "passes"))
    elif pre.get("reason"):
        lines.append(f"  pre-trend test: {pre['reason']}")
    return lines


def _market_lines(market: list[dict[str, Any]]) -> list[str]:
    lines = [
        "Market side: dispersion of approved wholesale prices across markets (per base unit)",
        (
            f"  {'commodity':<16} {'markets now':>11} {'CV now':>7} {'MALD now':>9} {'mean CV':>8}  "
            f"{'CV trend/yr [95%]':<28} state"
        ),
    ]
    for m in market:
        now, tr = m["now"], m["trend"]
        slope = "" if tr["slope_per_year"] is None else f"{tr['slope_per_year']:+.3f} {_ci(tr['ci'])}"
        lines.append(
            f"  {m['commodity']:<16} {now['n_markets']:>11} {_f(now['cv']):>7} {_f(now['mean_abs_log_diff']):>9} "
            f"{_f(m['mean_cv']):>8}  {slope:<28} {tr['state']}" + (f" ({tr['reason']})" if tr["reason"] else "")
        )
        margin = m["retail_margin"]
        if margin["value"] is not None or m["seasonal_amplitude"] is not None or m["rows_excluded"]:
            parts = []
            if margin["value"] is not None:
                parts.append(f"retail margin {margin['value']:+.1%} over {margin['n']} market-days")
            if m["seasonal_amplitude"] is not None:
                parts.append(f"intra-annual range {m['seasonal_amplitude']:.1%} of the mean")
            parts += [f"excluded {v}: {k}" for k, v in m["rows_excluded"].items()]
            lines.append(f"  {'':<16} " + "; ".join(parts))
        comparison = m.get("comparison") or {}
        if comparison.get("available"):
            ci = comparison["ci"]
            lines.append(
                f"  {'':<16} served markets ({comparison['served_markets']}) mean CV {comparison['mean_cv_served']:.3f}"
                f" against {comparison['other_markets']} others {comparison['mean_cv_not_served']:.3f}: difference "
                f"{comparison['difference']:+.3f}" + (f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "")
                + f" over {comparison['periods']} periods (descriptive)")
    return lines
