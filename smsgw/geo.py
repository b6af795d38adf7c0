"""Distances on the Earth: the one great-circle formula, for markets and for analytics."""
from __future__ import annotations

from typing import TypeVar

import numpy as np

EARTH_KM = 6371.0

Coordinate = TypeVar("Coordinate", float, np.ndarray)


def haversine_km(lat1: Coordinate, lon1: Coordinate, lat2: Coordinate, lon2: Coordinate) -> Coordinate:
    """Great-circle distance in km between points in degrees: numbers or numpy arrays alike
    (NaN where a coordinate is NaN)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dlat, dlon = p2 - p1, np.radians(lon2) - np.radians(lon1)
    a = np.sin(dlat / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlon / 2) ** 2
    return 2 * EARTH_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
