"""Curve fits the claims read: least-squares lines with their R^2."""

from __future__ import annotations

import numpy as np


def line(x, v) -> tuple[float, float, float]:
    """Slope, intercept and R^2 of the least-squares line of v on x."""
    x, v = np.asarray(x, float), np.asarray(v, float)
    slope, icept = np.polyfit(x, v, 1)
    resid = v - (slope * x + icept)
    r2 = float(1 - resid.var() / v.var()) if v.var() > 0 else 0.0
    return float(slope), float(icept), r2


def log_fit(t, v) -> tuple[float, float]:
    """Slope and R^2 of v against log t."""
    slope, _, r2 = line(np.log(np.asarray(t, float)), v)
    return slope, r2
