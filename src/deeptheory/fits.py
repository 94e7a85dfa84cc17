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


def shifted_power(t, v, offsets: int = 4000) -> tuple[float, float, float]:
    """The exponent p of v = c (log t - u0)^p, the family that holds the affine law
    a log t + b (p = 1, u0 = -b / a, for any b) and the root law (a log t + b)^(1/L) (p = 1/L):
    for each shift u0 on a geometric grid below min log t (from 1e-3 to 1e3 under it), the
    line of log v on log(log t - u0); the shift with the least squared residual wins. Returns
    (p, u0, residual RMS in log v). A v growing like a power of t drives p up (and u0 to the
    grid's end); a v levelling off drives p toward 0."""
    u, y = np.log(np.asarray(t, float)), np.log(np.asarray(v, float))
    u0 = u.min() - np.geomspace(1e-3, 1e3, offsets)
    x = np.log(u[None, :] - u0[:, None])
    xm, ym = x.mean(1, keepdims=True), y.mean()
    slope = ((x - xm) * (y - ym)).sum(1) / ((x - xm) ** 2).sum(1)
    resid = (y - ym) - slope[:, None] * (x - xm)
    sse = (resid ** 2).sum(1)
    best = int(np.argmin(sse))
    return float(slope[best]), float(u0[best]), float(np.sqrt(sse[best] / len(y)))


def log_affine(t, v, windows: int) -> dict:
    """How well v follows a log t + b over the points given: the line of v on log t (slope,
    intercept, R^2) and, as its residual trend, the exponent p of c (log t - u0)^p
    (:func:`shifted_power`) in each of ``windows`` successive windows of equal width in log t:
    1 for the affine law whatever its intercept, 1/2 for sqrt(a log t + b)."""
    t, v = np.asarray(t, float), np.asarray(v, float)
    slope, icept, r2 = line(np.log(t), v)
    edges = np.exp(np.linspace(np.log(t.min()), np.log(t.max()), windows + 1))
    exps = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (t >= lo * (1 - 1e-12)) & (t <= hi * (1 + 1e-12))
        if sel.sum() < 4:
            raise ValueError(f"fewer than four points in the window t in [{lo:.0f}, {hi:.0f}]: record more steps "
                             f"or use fewer windows")
        exps.append(shifted_power(t[sel], v[sel])[0])
    return {"slope": slope, "intercept": icept, "r2": r2, "exponents": exps, "window_edges": edges.tolist()}
