"""Claim checks computed from run results, and the tolerances (config key ``claims``) they use.

Every check takes the final rows of a target's runs (one row per run, several seeds per
grid point allowed) and returns a claim row ``{id, claim, held, measured, detail}``. The
tolerance of each comparison is the configured minimum, widened to ``spread_k`` standard
deviations across seeds where a grid point has several: a difference smaller than the
seed-to-seed noise is not evidence either way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


class Tolerances:
    """The thresholds of config key ``claims``, read as attributes: ``tol.train_zero`` is
    ``claims.train_zero``. They live in config alone (schema-validated, fixed before results
    are seen); a name the config lacks is an error that names the key."""

    def __init__(self, cfg: dict):
        self._cfg = {k: float(v) for k, v in (cfg or {}).items()}

    @classmethod
    def from_config(cls, cfg: dict) -> "Tolerances":
        return cls(cfg)

    def __getattr__(self, name: str) -> float:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._cfg[name]
        except KeyError:
            raise KeyError(f"config key claims.{name} is missing: every claim threshold lives there "
                           f"(config/config.yaml, config/README.md)") from None

    def as_dict(self) -> dict:
        return dict(self._cfg)


def claim(cid: str, text: str, held: bool, measured: str, detail: str) -> dict:
    return {"id": cid, "claim": text, "held": bool(held), "measured": measured, "detail": detail}


def by_point(final: pd.DataFrame, x: str) -> pd.DataFrame:
    """Mean and seed spread of the errors at each grid point, sorted by ``x``."""
    final = final.assign(gap=final["test_err"] - final["train_err"])
    aggs = dict(train_err=("train_err", "mean"), test_err=("test_err", "mean"), gap=("gap", "mean"),
                train_err_sd=("train_err", "std"), test_err_sd=("test_err", "std"), gap_sd=("gap", "std"),
                n_params=("n_params", "first"), runs=("run_id", "count"),
                interpolated=("interpolated", "sum"), epochs=("epoch", "mean"))
    aggs.pop(x, None)
    out = final.groupby(x).agg(**aggs)
    return out.fillna({"train_err_sd": 0.0, "test_err_sd": 0.0, "gap_sd": 0.0}).reset_index().sort_values(x)


def tolerance(points: pd.DataFrame, col: str, base: float, k: float) -> float:
    sd = points.get(f"{col}_sd")
    spread = float(sd.max()) if sd is not None and len(sd) else 0.0
    return max(base, k * spread)


def _fmt(xs, ys) -> str:
    return ", ".join(f"{x:g}: {y:.3f}" for x, y in zip(xs, ys))


def trend(xs, ys, tol: float, direction: str) -> tuple[bool, float]:
    """``direction`` 'falls': overall drop > tol and no step rises by more than tol.
    'rises': the mirror image. 'flat_or_falls': no step and no overall rise > tol.
    Returns (held, the largest step against the direction)."""
    ys = np.asarray(ys, float)
    steps = np.diff(ys)
    if direction == "falls":
        worst = float(steps.max()) if len(steps) else 0.0
        return bool(len(ys) >= 2 and ys[-1] < ys[0] - tol and worst <= tol), worst
    if direction == "rises":
        worst = float(-steps.min()) if len(steps) else 0.0
        return bool(len(ys) >= 2 and ys[-1] > ys[0] + tol and worst <= tol), worst
    if direction == "flat_or_falls":
        worst = float(steps.max()) if len(steps) else 0.0
        overall = float(ys.max() - ys[0]) if len(ys) else 0.0
        return bool(len(ys) >= 2 and worst <= tol and overall <= tol), max(worst, overall)
    raise ValueError(direction)


def train_near_zero(cid, text, final: pd.DataFrame, where: pd.Series, where_text: str, tol: Tolerances) -> dict:
    sel = final[where]
    if sel.empty:
        return claim(cid, text, False, f"no runs with {where_text} in the grid", "not testable on this grid")
    worst = float(sel["train_err"].max())
    n_int = int(sel["interpolated"].sum())
    return claim(cid, text, worst <= tol.train_zero,
                 f"max train err {worst:.4f} over {len(sel)} runs with {where_text}; "
                 f"{n_int}/{len(sel)} reached 0 (interpolated)",
                 f"held if every such run has train err <= {tol.train_zero}")


def falls_with(cid, text, points: pd.DataFrame, x: str, col: str, tol: Tolerances, direction="falls") -> dict:
    t = tolerance(points, col, tol.step, tol.spread_k)
    held, worst = trend(points[x], points[col], t, direction)
    return claim(cid, text, held, f"{col} by {x}: {_fmt(points[x], points[col])}",
                 f"{direction}: tolerance {t:.3f} (max of {tol.step} and {tol.spread_k} x seed sd); "
                 f"worst step against it {worst:+.3f}")


def at_chance(cid, text, final: pd.DataFrame, num_classes: int, tol: Tolerances) -> dict:
    chance = 1.0 - 1.0 / num_classes
    n_test = int(final["n_test"].min())
    # Sampling error of an error rate on n_test images widens the band.
    t = tol.chance + 3 * np.sqrt(chance * (1 - chance) / n_test)
    dev = (final["test_err"] - chance).abs()
    return claim(cid, text, bool((dev <= t).all()),
                 f"test err from {final['test_err'].min():.3f} to {final['test_err'].max():.3f}, chance {chance:.3f}",
                 f"held if every run is within {t:.3f} of chance ({tol.chance} + 3 binomial sd at n_test={n_test})")


def beyond_threshold(cid, text, points: pd.DataFrame, x: str, col: str, threshold: float,
                     threshold_text: str, direction: str, tol: Tolerances) -> dict:
    """Trend of ``col`` over the grid points past ``threshold`` in ``x``, starting from the
    last point before it (the reference the memos compare against)."""
    below = points[points[x] < threshold]
    above = points[points[x] >= threshold]
    if len(above) == 0:
        return claim(cid, text, False, f"no grid point with {threshold_text}", "not testable on this grid")
    sel = pd.concat([below.tail(1), above]) if len(below) else above
    if len(sel) < 2:
        return claim(cid, text, False, f"only one grid point around {threshold_text}", "not testable on this grid")
    t = tolerance(sel, col, tol.step, tol.spread_k)
    held, worst = trend(sel[x], sel[col], t, direction)
    return claim(cid, text, held, f"{col} by {x} from the last point before {threshold_text}: "
                 f"{_fmt(sel[x], sel[col])}",
                 f"{direction}: tolerance {t:.3f}; worst step against it {worst:+.3f}")
