"""Real public price files read straight into observation frames (no database needed).

Columns out: day, market, commodity, grade (variety; "" when none), price (per base unit),
currency, base, kind, and latitude/longitude where the file has them. Units like "90 KG"
become per-kg prices; units that are not a weight ("Average Bunch") keep their own base,
so they are never compared with kilograms.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

WEIGHTS = {"KG": 1.0, "G": 0.001, "MT": 1000.0, "QUINTAL": 100.0}
UNIT = r"^\s*(?P<n>[0-9]*\.?[0-9]+)?\s*(?P<u>[A-Za-z][A-Za-z ]*?)\s*$"


def per_base(price: pd.Series, unit: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Prices per base unit and the base: "90 KG" -> per kg; other units keep their name."""
    parts = unit.fillna("").astype(str).str.extract(UNIT)
    count = pd.to_numeric(parts["n"], errors="coerce").fillna(1.0)
    name = parts["u"].fillna("").str.upper().str.strip()
    factor = name.map(WEIGHTS)
    is_weight = factor.notna()
    base = pd.Series(np.where(is_weight, "kg", name.str.lower()), index=unit.index)
    base = base.where(unit.notna() & (unit.astype(str).str.strip() != ""), "unknown")
    divisor = count * factor.fillna(1.0)
    return price.astype("float64") / divisor, base


def read_wfp(path: Path) -> pd.DataFrame:
    """WFP VAM export (HDX): skips the HXL tag row; wholesale and retail kept apart in ``kind``."""
    raw = pd.read_csv(path, skiprows=[1])
    price, base = per_base(raw["price"], raw["unit"])
    return pd.DataFrame({
        "day": pd.to_datetime(raw["date"]).astype("datetime64[ns]"), "market": raw["market"],
        "commodity": raw["commodity"], "grade": "", "price": price, "currency": raw["currency"], "base": base,
        "kind": raw["pricetype"].str.lower(), "latitude": raw["latitude"].astype("float64"),
        "longitude": raw["longitude"].astype("float64"), "region": raw["admin1"],
    })


def read_mofa(path: Path) -> pd.DataFrame:
    """Ghana MoFA weekly bulletins (long form): cedi per the unit given; missing units kept as "unknown"."""
    raw = pd.read_csv(path)
    price, base = per_base(raw["price_ghs"], raw["unit"])
    return pd.DataFrame({
        "day": pd.to_datetime(raw["date"]).astype("datetime64[ns]"), "market": raw["market"],
        "commodity": raw["commodity"], "grade": "", "price": price, "currency": "GHS", "base": base,
        "kind": "wholesale",
    })


def read_agmarknet(path: Path) -> pd.DataFrame:
    """Agmarknet daily mandi prices: modal price per quintal to per kg; the variety is the grade."""
    raw = pd.read_csv(path)
    if not (raw["unit"] == "Rs/quintal").all():
        raise ValueError("Agmarknet file with a unit other than Rs/quintal")
    return pd.DataFrame({
        "day": pd.to_datetime(raw["date"]).astype("datetime64[ns]"), "market": raw["market"],
        "commodity": raw["commodity_slug"], "grade": raw["variety"].fillna(""),
        "price": raw["modal_price"].astype("float64") / WEIGHTS["QUINTAL"], "currency": "INR", "base": "kg",
        "kind": "wholesale",
    })
