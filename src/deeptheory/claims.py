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
                 f"fails if any such run has train err > {tol.train_zero}")


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


# --- fitting, where it bites: at W ------------------------------------------------------

# Runs whose end says nothing about whether the net can fit the data: left out of the claims
# that read "does not fit", and counted.
UNSETTLED = ("not converged", "diverged")


def diverged(final: pd.DataFrame) -> pd.Series:
    """The runs whose loss went non-finite (metrics written before the rule have no column)."""
    if "diverged" not in final:
        return pd.Series(False, index=final.index)
    return final["diverged"].fillna(False).astype(bool)


def fit_status(final: pd.DataFrame, tol: Tolerances) -> pd.Series:
    """Per run: 'interpolated' (train error exactly 0), 'levelled' (stopped at its cap with
    the loss no longer falling by more than ``still_falling`` over its last fifth of
    epochs), 'not converged' (still falling: it says nothing about whether it could fit) or
    'diverged' (its loss became non-finite and training stopped)."""
    drop = final["loss_drop_last_fifth"].astype(float).fillna(float("inf"))
    status = np.where(diverged(final), "diverged", np.where(final["train_err"] == 0, "interpolated",
                      np.where(drop > tol.still_falling, "not converged", "levelled")))
    return pd.Series(status, index=final.index)


def _excluded(sel: pd.DataFrame, status: pd.Series) -> str:
    out = sel[status.loc[sel.index].isin(UNSETTLED)]
    if out.empty:
        return "no run excluded"
    return (f"{len(out)} run(s) left out as not converged (loss still falling > still_falling at the cap) "
            f"or diverged (loss not finite): "
            + ", ".join(f"N={n} W={w} ({st})" for n, w, st in zip(out["N"], out["n_params"], status.loc[out.index])))


def does_not_fit(cid, text, final: pd.DataFrame, where: pd.Series, where_text: str, tol: Tolerances) -> dict:
    """Every converged or levelled run with ``where`` keeps a training error above
    ``train_zero``; runs still falling at their cap are left out and counted."""
    status = fit_status(final, tol)
    sel = final[where]
    used = sel[~status.loc[sel.index].isin(UNSETTLED)]
    if used.empty:
        return claim(cid, text, False, f"no converged run with {where_text} ({len(sel)} in the grid)",
                     f"not testable on this grid: needs a converged run with {where_text}; {_excluded(sel, status)}")
    low = float(used["train_err"].min())
    return claim(cid, text, low > tol.train_zero,
                 f"min train err {low:.4f} over {len(used)} converged run(s) with {where_text}: "
                 + _fmt(used["N"] if "N" in used else used.index, used["train_err"]),
                 f"fails if any of them has train err <= {tol.train_zero}; {_excluded(sel, status)}")


def first_unfit_near_w(cid, text, final: pd.DataFrame, W: int, tol: Tolerances) -> dict:
    """Random labels: the smallest N whose converged runs leave train error 0 lies in
    [W / fit_boundary_factor, fit_boundary_factor x W]."""
    f = tol.fit_boundary_factor
    status = fit_status(final, tol)
    used = final[~status.isin(UNSETTLED)]
    pts = used.groupby("N")["train_err"].mean().sort_index()
    unfit = pts[pts > tol.train_zero]
    lo, hi = W / f, W * f
    if pts.empty:
        return claim(cid, text, False, f"not testable: no converged run ({len(final)} in the grid)",
                     f"needs converged runs to find the first N with train err > {tol.train_zero}; "
                     f"{_excluded(final, status)}")
    if unfit.empty:
        return claim(cid, text, False, f"train err <= {tol.train_zero} at every converged N up to {pts.index.max()}",
                     f"fails unless the first N with train err > {tol.train_zero} lies in [{lo:.0f}, {hi:.0f}]; "
                     f"{_excluded(final, status)}")
    n1 = int(unfit.index[0])
    return claim(cid, text, lo <= n1 <= hi,
                 f"train err first above {tol.train_zero} at N = {n1} = {n1 / W:.2f} W; by N: {_fmt(pts.index, pts)}",
                 f"fails unless that N lies in [W/{f:g}, {f:g} W] = [{lo:.0f}, {hi:.0f}]; {_excluded(final, status)}")


def near_chance_at_largest_n(cid, text, final: pd.DataFrame, W: int, tol: Tolerances) -> dict:
    """Random labels at the largest N, which must be at least fit_boundary_factor x W: train
    error at least ``chance_fraction`` of chance (converged runs only)."""
    status = fit_status(final, tol)
    n_max = int(final["N"].max())
    chance = 1 - 1 / int(final["num_classes"].iloc[0])
    need = tol.fit_boundary_factor * W
    at = final[(final["N"] == n_max) & ~status.isin(UNSETTLED)]
    bar = tol.chance_fraction * chance
    if n_max < need or at.empty:
        why = f"largest N = {n_max} < {need:.0f}" if n_max < need else "its runs did not converge"
        return claim(cid, text, False, f"not testable: {why}", f"needs a converged run at N >= {tol.fit_boundary_factor:g} W")
    err = float(at["train_err"].mean())
    return claim(cid, text, err >= bar, f"train err {err:.3f} at N = {n_max} = {n_max / W:.1f} W (chance {chance:.3f})",
                 f"fails if below {tol.chance_fraction:g} x chance = {bar:.3f}; {_excluded(final[final['N'] == n_max], status)}")


def gap_at_largest_n(cid, text, points: pd.DataFrame, W: int, tol: Tolerances) -> dict:
    """At the largest N of the grid, which must exceed W, the test-train gap is at most
    ``gap_at_largest_n``."""
    last = points.sort_values("N").iloc[-1]
    if last["N"] <= W:
        return claim(cid, text, False, f"not testable: largest N = {int(last['N'])} <= W = {W}",
                     "needs a grid point with N > W")
    gap = float(last["gap"])
    return claim(cid, text, gap <= tol.gap_at_largest_n,
                 f"gap {gap:.3f} (test {last['test_err']:.3f} - train {last['train_err']:.3f}) at N = {int(last['N'])} "
                 f"= {last['N'] / W:.1f} W",
                 f"fails if the gap exceeds {tol.gap_at_largest_n}")


def fits_at_first_w_past_n(cid, text, final: pd.DataFrame, N: int, tol: Tolerances) -> dict:
    """memo073 Fig 3, "zero error as soon as W = N": the first grid W >= N lies within
    w_bracket_factor x N and its runs reach train error <= train_zero."""
    past = final[final["n_params"] >= N]
    f = tol.w_bracket_factor
    if past.empty:
        return claim(cid, text, False, f"not testable: no grid W >= N = {N}", "needs grid widths around W = N")
    w1 = int(past["n_params"].min())
    at = past[past["n_params"] == w1]
    if w1 > f * N:
        return claim(cid, text, False, f"not testable: first grid W >= N is {w1} = {w1 / N:.2f} N",
                     f"needs a grid W in [N, {f:g} N]: add widths")
    worst = float(at["train_err"].max())
    return claim(cid, text, worst <= tol.train_zero,
                 f"train err {worst:.4f} at the first grid W >= N: W = {w1} = {w1 / N:.2f} N "
                 f"({int(at['interpolated'].sum())}/{len(at)} runs exactly 0)",
                 f"fails if above {tol.train_zero}")
