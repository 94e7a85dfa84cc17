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


def window_slopes(t, v, windows: int) -> tuple[list[float], list[float]]:
    """Local slopes of v against log t: the least-squares line of v on log t over each of
    ``windows`` successive windows of equal width in log t (every point in one window; a
    point on an edge counts in both). Returns (the slopes, the windows' edges in t)."""
    t, v = np.asarray(t, float), np.asarray(v, float)
    u = np.log(t)
    edges = np.linspace(u.min(), u.max(), windows + 1)
    slopes = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (u >= lo) & (u <= hi)
        if sel.sum() < 2:
            raise ValueError(f"fewer than two points in the window log t in [{lo:.3f}, {hi:.3f}]: record more steps "
                             f"or use fewer windows")
        slopes.append(line(u[sel], v[sel])[0])
    return slopes, np.exp(edges).tolist()
