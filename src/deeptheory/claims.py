"""Claim checks computed from run results, and the tolerances (config key ``claims``) they use.

Every check takes the final rows of a target's runs (one row per run, several seeds per
grid point allowed) and returns a claim row ``{id, claim, verdict, reason, measured,
detail}``. A verdict is one of three:

- ``held``: the numbers bear the memo's statement out, beyond noise where it compares;
- ``refuted``: they contradict it beyond noise, on runs that converged, in the regime the
  memo speaks of;
- ``inconclusive``: neither, for the ``reason`` given (one of ``REASONS``): runs still
  falling at their cap, nets that did not train or did not settle, a difference within
  noise, a regime this scale does not reach, or a grid that cannot test the claim.

Error rates are compared through their standard errors: binomial at the number of images
an error was measured on, plus the seed spread where a grid point has several seeds. A
difference within ``noise_z`` standard errors is neither a rise nor a fall.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .schema import claims_fields

HELD, REFUTED, INCONCLUSIVE = "held", "refuted", "inconclusive"
VERDICTS = (HELD, REFUTED, INCONCLUSIVE)

# Why a verdict is inconclusive; claims.md counts them.
NOT_CONVERGED = "still falling at its cap"
NOT_SETTLED = "did not settle"
DID_NOT_TRAIN = "did not train"
DIVERGED = "diverged"
WITHIN_NOISE = "within noise"
OUT_OF_REGIME = "outside the regime at this scale"
UNTESTABLE = "the grid cannot test it"
NOT_MIXED = "chains did not mix"
REASONS = (NOT_CONVERGED, NOT_SETTLED, DID_NOT_TRAIN, DIVERGED, WITHIN_NOISE, OUT_OF_REGIME, UNTESTABLE, NOT_MIXED)


class Tolerances:
    """The thresholds of config key ``claims``, read as attributes: ``tol.train_zero`` is
    ``claims.train_zero``. The attributes are exactly the schema's ``claims`` properties, of
    their schema types; they live in config alone (validated, fixed before results are
    seen), so a key missing from ``cfg`` or one the schema lacks is an error naming it here,
    before any claim is read, and reading an undeclared name is an AttributeError."""

    __slots__ = tuple(claims_fields())

    def __init__(self, cfg: dict):
        cfg, fields = dict(cfg or {}), claims_fields()
        missing = [k for k in fields if k not in cfg]
        if missing:
            raise KeyError(f"config key claims.{missing[0]} is missing: every claim threshold lives there "
                           f"(config/config.yaml, config/README.md)" + (f"; also missing: {', '.join(missing[1:])}"
                                                                        if missing[1:] else ""))
        unknown = sorted(set(cfg) - set(fields))
        if unknown:
            raise KeyError(f"config key claims.{unknown[0]}: not a claim threshold of the schema "
                           f"(workflow/schemas/config.schema.yaml)")
        for name, kind in fields.items():
            object.__setattr__(self, name, kind(cfg[name]))

    def __setattr__(self, name, value):
        raise AttributeError(f"claims.Tolerances is read-only: config key claims.{name} is set in config")

    def __reduce__(self):  # a copy (pickle, a worker process) is built again from the values
        return Tolerances, ({k: getattr(self, k) for k in self.__slots__},)

    def __repr__(self) -> str:
        return f"Tolerances({', '.join(f'{k}={getattr(self, k)!r}' for k in self.__slots__)})"


def claim(cid: str, text: str, held: bool, measured: str, detail: str, inconclusive: str | None = None) -> dict:
    """A claim row: ``held`` decides between held and refuted unless ``inconclusive`` names
    why the numbers can decide neither (one of ``REASONS``)."""
    if inconclusive is not None and inconclusive not in REASONS:
        raise ValueError(f"not a reason for an inconclusive verdict: {inconclusive!r} (one of {REASONS})")
    verdict = INCONCLUSIVE if inconclusive else (HELD if held else REFUTED)
    return {"id": cid, "claim": text, "verdict": verdict, "reason": inconclusive or "", "measured": measured,
            "detail": detail}


def untestable(cid: str, text: str, measured: str, detail: str, reason: str = UNTESTABLE) -> dict:
    """A claim its inputs cannot decide: inconclusive, with ``reason``."""
    return claim(cid, text, False, measured, detail, inconclusive=reason)


def verdict_of(holds: bool, refutes: bool, reason: str) -> str | None:
    """The ``inconclusive`` argument of ``claim`` for a check that found evidence ``holds``
    for the statement or ``refutes`` it: None when one of them decides, else ``reason``."""
    return None if holds or refutes else reason


def binomial_se(p, n):
    """Standard error of an error rate ``p`` measured on ``n`` images."""
    p = np.clip(np.asarray(p, float), 0.0, 1.0)
    return np.sqrt(p * (1 - p) / np.asarray(n, float))


def by_point(final: pd.DataFrame, x: str) -> pd.DataFrame:
    """Mean, seed spread and standard error of the errors at each grid point, sorted by ``x``.
    A test error's standard error is binomial at the test-set size (every seed meets the same
    test images, so that part does not shrink with seeds) plus the seed spread of the mean;
    a training error is exact on its own subset, so only the seed spread counts."""
    final = final.assign(gap=final["test_err"] - final["train_err"])
    aggs = dict(train_err=("train_err", "mean"), test_err=("test_err", "mean"), gap=("gap", "mean"),
                train_err_sd=("train_err", "std"), test_err_sd=("test_err", "std"), gap_sd=("gap", "std"),
                n_params=("n_params", "first"), runs=("run_id", "count"), n_test=("n_test", "min"),
                interpolated=("interpolated", "sum"), epochs=("epoch", "mean"))
    aggs.pop(x, None)
    out = final.groupby(x).agg(**aggs)
    out = out.fillna({"train_err_sd": 0.0, "test_err_sd": 0.0, "gap_sd": 0.0}).reset_index().sort_values(x)
    k = out["runs"].clip(lower=1)
    sampling = binomial_se(out["test_err"], out["n_test"])
    out["test_err_se"] = np.sqrt(sampling ** 2 + out["test_err_sd"] ** 2 / k)
    out["gap_se"] = np.sqrt(sampling ** 2 + out["gap_sd"] ** 2 / k)
    out["train_err_se"] = out["train_err_sd"] / np.sqrt(k)
    return out


def _fmt(xs, ys) -> str:
    return ", ".join(f"{x:g}: {y:.3f}" for x, y in zip(xs, ys))


def trend(xs, ys, tol: float, direction: str) -> tuple[bool, float]:
    """``direction`` 'falls': overall drop > tol and no step rises by more than tol.
    'rises': the mirror image. 'flat_or_falls': no step and no overall rise > tol.
    Returns (held, the largest step against the direction). For quantities without
    sampling noise (shares with their own tolerance, deterministic angles); error rates go
    through ``noise_trend``."""
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


def noise_trend(ys, ses, z: float, direction: str, margin: float = 0.0) -> tuple[bool, str | None, str]:
    """Three-way reading of a sequence of error rates with standard errors ``ses`` (grid
    order): (held, inconclusive reason or None, what decided it).

    A rise against the claimed direction (a step, or any point against the first) counts
    only if it exceeds ``margin`` (claims.step: smaller changes are no rise in the memo's
    sense) by more than z standard errors of the difference; it refutes the claim.
    'falls': otherwise held by an overall fall larger than ``margin`` by z standard errors,
    refuted by one bounded below it (fall + z se < margin: no fall in the memo's sense),
    else within noise. 'rises' is the mirror image. 'flat_or_falls' ("does not rise"): otherwise held only
    when every rise is bounded below ``margin`` (rise + z se <= margin), so that a rise the
    memo would call one could not hide in the noise; else within noise."""
    ys, ses = np.asarray(ys, float), np.asarray(ses, float)
    if len(ys) < 2:
        return False, UNTESTABLE, "fewer than two grid points"
    sign = -1.0 if direction == "rises" else 1.0
    pairs = [(i, i + 1) for i in range(len(ys) - 1)]  # steps
    pairs += [(0, j) for j in range(2, len(ys))]       # every point against the first
    rise = np.array([sign * (ys[j] - ys[i]) for i, j in pairs])
    se = np.array([np.hypot(ses[i], ses[j]) for i, j in pairs])
    k = int(np.argmax(rise - z * se))
    against = (f"largest change against it {sign * rise[k]:+.3f} (point {pairs[k][0]} -> {pairs[k][1]}, "
               f"{z:g} se = {z * se[k]:.3f})")
    if rise[k] - z * se[k] > margin:
        return False, None, f"refuted by a change beyond {margin:g} + {z:g} se: " + against
    if direction == "flat_or_falls":
        bound = float(np.max(rise + z * se))
        if bound <= margin:
            return True, None, f"every rise bounded below {margin:g} (largest rise + {z:g} se = {bound:.3f})"
        return False, WITHIN_NOISE, (f"no rise beyond noise, but a rise of {margin:g} cannot be excluded "
                                     f"(largest rise + {z:g} se = {bound:.3f}); " + against)
    fall, fall_se = sign * (ys[0] - ys[-1]), float(np.hypot(ses[0], ses[-1]))
    overall = f"overall change {ys[-1] - ys[0]:+.3f} ({z:g} se = {z * fall_se:.3f}, margin {margin:g}); " + against
    if fall - z * fall_se > margin:
        return True, None, overall
    if fall + z * fall_se < margin:
        return False, None, "refuted: no change of the claimed sign beyond the margin; " + overall
    return False, WITHIN_NOISE, overall


def point_difference(first: pd.DataFrame, second: pd.DataFrame, x: str, col: str = "test_err"):
    """Two sets of runs compared grid point by grid point: the points of each (``by_point``,
    indexed by ``x``), the shared ``x`` values, and there ``second - first`` of ``col`` with the
    standard error of that difference."""
    a, b = (by_point(f, x).set_index(x) for f in (first, second))
    xs = sorted(set(a.index) & set(b.index))
    return a, b, xs, b.loc[xs, col] - a.loc[xs, col], np.hypot(a.loc[xs, f"{col}_se"], b.loc[xs, f"{col}_se"])


def versus(value: float, se: float, threshold: float, z: float, below: bool) -> tuple[bool, str | None]:
    """``value`` (standard error ``se``) against ``threshold``: held where it lies beyond z se
    on the side the claim asks (``below``: value < threshold), refuted beyond z se on the
    other, else within noise."""
    d = (threshold - value) if below else (value - threshold)
    if d - z * se >= 0:
        return True, None
    if d + z * se < 0:
        return False, None
    return False, WITHIN_NOISE


def falls_with(cid, text, points: pd.DataFrame, x: str, col: str, tol: Tolerances, direction="falls") -> dict:
    held, why, decided = noise_trend(points[col], points[f"{col}_se"], tol.noise_z, direction, tol.step)
    return claim(cid, text, held, f"{col} by {x}: {_fmt(points[x], points[col])}",
                 f"{direction}, read against {tol.noise_z:g} standard errors (binomial at n_test, and the seed "
                 f"spread): {decided}", inconclusive=why)


def at_chance(cid, text, final: pd.DataFrame, num_classes: int, tol: Tolerances) -> dict:
    chance = 1.0 - 1.0 / num_classes
    final = final[~diverged(final)]  # a diverged net's errors are those of overflowed weights
    if final.empty:
        return untestable(cid, text, "every run diverged", "needs a run whose loss stayed finite", reason=DIVERGED)
    n_test = int(final["n_test"].min())
    # Sampling error of an error rate on n_test images widens the band.
    t = tol.chance + tol.noise_z * np.sqrt(chance * (1 - chance) / n_test)
    dev = (final["test_err"] - chance).abs()
    return claim(cid, text, bool((dev <= t).all()),
                 f"test err from {final['test_err'].min():.3f} to {final['test_err'].max():.3f}, chance {chance:.3f}",
                 f"held if every run is within {t:.3f} of chance ({tol.chance} + {tol.noise_z:g} binomial sd at "
                 f"n_test={n_test})")


def beyond_threshold(cid, text, points: pd.DataFrame, x: str, col: str, threshold: float,
                     threshold_text: str, direction: str, tol: Tolerances) -> dict:
    """Trend of ``col`` over the grid points past ``threshold`` in ``x``, starting from the
    last point before it (the reference the memos compare against)."""
    below = points[points[x] < threshold]
    above = points[points[x] >= threshold]
    if len(above) == 0:
        return untestable(cid, text, f"no grid point with {threshold_text}", "needs one")
    sel = pd.concat([below.tail(1), above]) if len(below) else above
    if len(sel) < 2:
        return untestable(cid, text, f"only one grid point around {threshold_text}", "needs two")
    held, why, decided = noise_trend(sel[col], sel[f"{col}_se"], tol.noise_z, direction, tol.step)
    return claim(cid, text, held, f"{col} by {x} from the last point before {threshold_text}: "
                 f"{_fmt(sel[x], sel[col])}", f"{direction}, read against {tol.noise_z:g} standard errors: {decided}",
                 inconclusive=why)


def optimum_near(cid, text, points: pd.DataFrame, x: str, col: str, ref: float, ref_text: str,
                 factor: float, tol: Tolerances) -> dict:
    """memo073 section 5: the test error is "optimal around the boundary" x = ref. The best
    grid point within [ref / factor, factor ref] against the best outside it: refuted if one
    outside beats every one inside by more than claims.step beyond noise_z standard errors;
    held if none can (its advantage + z se <= step); else within noise."""
    lo, hi = ref / factor, ref * factor
    inside, outside = points[points[x].between(lo, hi)], points[~points[x].between(lo, hi)]
    if inside.empty or outside.empty:
        return untestable(cid, text, f"{len(inside)} grid point(s) in [{lo:,.0f}, {hi:,.0f}], {len(outside)} outside",
                          "needs grid points on both sides of the bracket")
    a, b = inside.loc[inside[col].idxmin()], outside.loc[outside[col].idxmin()]
    gain, se = float(a[col] - b[col]), float(np.hypot(a[f"{col}_se"], b[f"{col}_se"]))
    why = None if gain - tol.noise_z * se > tol.step or gain + tol.noise_z * se <= tol.step else WITHIN_NOISE
    return claim(cid, text, gain + tol.noise_z * se <= tol.step,
                 f"best {col} within [{lo:,.0f}, {hi:,.0f}] ({ref_text} x/÷ {factor:g}): {a[col]:.3f} at {x} = "
                 f"{a[x]:,.0f}; best outside: {b[col]:.3f} at {x} = {b[x]:,.0f}; outside better by {gain:+.3f} +- "
                 f"{se:.3f}; by {x}: {_fmt(points[x], points[col])}",
                 f"refuted if a point outside beats the bracket by more than {tol.step} beyond {tol.noise_z:g} se, "
                 f"held if its advantage + {tol.noise_z:g} se stays within {tol.step}", inconclusive=why)


# --- fitting, where it bites: at W ------------------------------------------------------

# A run's end, read from its metrics (fit_status). Only 'interpolated' and 'levelled' runs
# say whether the net fits its data; the others are left out of the checks that read a fit
# and named, and a claim that has nothing else to read is inconclusive for their reason.
STATUS_REASON = {"not converged": NOT_CONVERGED, "not settled": NOT_SETTLED, "did not train": DID_NOT_TRAIN,
                 "diverged": DIVERGED}
UNSETTLED = tuple(STATUS_REASON)
STATUSES = ("interpolated", "levelled", *UNSETTLED)


def final_rows(runs: pd.DataFrame) -> pd.DataFrame:
    """The final metrics row of each run (the one filter of a metrics table that every
    target reads its runs' ends through), with what its earlier rows say of its end:
    ``min_train_loss`` (the lowest evaluated training loss after its first evaluation: a
    net that never went below ln(classes) did not train) and ``err_range_last_fifth`` (how
    far its evaluated training error moved over its last fifth of epochs: a run that bounces)."""
    runs = runs.assign(final=runs["final"].astype(bool))
    final = runs[runs["final"]].reset_index(drop=True)
    last_epoch = runs.groupby("run_id")["epoch"].transform("max")
    late = runs[(runs["epoch"] >= 0.8 * last_epoch) & (runs["epoch"] > 0)].groupby("run_id")["train_err"]
    final["err_range_last_fifth"] = final["run_id"].map(late.max() - late.min())
    if "train_loss" in runs:
        final["min_train_loss"] = final["run_id"].map(runs[runs["epoch"] > 0].groupby("run_id")["train_loss"].min())
    return final


def diverged(final: pd.DataFrame) -> pd.Series:
    """The runs whose loss went non-finite (metrics written before the rule have no column)."""
    if "diverged" not in final:
        return pd.Series(False, index=final.index)
    return final["diverged"].fillna(False).astype(bool)


def did_not_train(final: pd.DataFrame, tol: Tolerances) -> pd.Series:
    """Runs whose training loss never left ln(classes) (every evaluation within
    ``dead_loss_rtol`` of it: scores that do not depend on the image), read from
    ``min_train_loss`` where ``final_rows`` made it."""
    if "min_train_loss" not in final:
        return pd.Series(False, index=final.index)
    floor = (1 - tol.dead_loss_rtol) * np.log(final["num_classes"].astype(float))
    return (final["min_train_loss"].astype(float) >= floor).fillna(False)


def fit_status(final: pd.DataFrame, tol: Tolerances) -> pd.Series:
    """Per run, one of ``STATUSES``: 'interpolated' (train error exactly 0), 'diverged' (its
    loss became non-finite and training stopped), 'did not train' (its loss never left
    ln(classes)), 'not converged' (at its cap the loss still fell by more than
    ``still_falling`` over its last fifth of epochs), 'not settled' (its training error
    still moved by more than ``settle_range`` over that fifth: it bounces), else
    'levelled' (it stopped fitting no more of its data; so is a run the plateau rule
    stopped, RunBook.plateau_reached)."""
    drop = final["loss_drop_last_fifth"].astype(float).fillna(float("inf"))
    moved = (final["err_range_last_fifth"].astype(float).fillna(0.0) if "err_range_last_fifth" in final
             else pd.Series(0.0, index=final.index))
    plateaued = final["plateaued"].fillna(False).astype(bool) if "plateaued" in final else False
    status = np.select([diverged(final), final["train_err"] == 0, did_not_train(final, tol), plateaued,
                        drop > tol.still_falling, moved > tol.settle_range],
                       ["diverged", "interpolated", "did not train", "levelled", "not converged", "not settled"],
                       "levelled")
    return pd.Series(status, index=final.index)


def _excluded(sel: pd.DataFrame, status: pd.Series) -> str:
    out = sel[status.loc[sel.index].isin(UNSETTLED)]
    if out.empty:
        return "no run excluded"
    return (f"{len(out)} run(s) left out (a run still falling at its cap, bouncing, that did not train, or "
            f"diverged says nothing about whether the net fits): "
            + ", ".join(f"N={n} W={w} ({st})" for n, w, st in zip(out["N"], out["n_params"], status.loc[out.index])))


def unsettled_reason(sel: pd.DataFrame, status: pd.Series) -> str:
    """The reason to give when ``sel``'s unsettled runs are all a check could read: the
    status most of them share."""
    st = status.loc[sel.index]
    st = st[st.isin(UNSETTLED)]
    return STATUS_REASON[st.value_counts().index[0]] if len(st) else UNTESTABLE


def train_near_zero(cid, text, final: pd.DataFrame, where: pd.Series, where_text: str, tol: Tolerances) -> dict:
    """Every run with ``where`` reaches train error <= ``train_zero``. Refuted only by a run
    that levelled off above it; a run above it that was still falling, bouncing, did not
    train or diverged leaves the claim inconclusive."""
    sel = final[where]
    if sel.empty:
        return untestable(cid, text, f"no runs with {where_text} in the grid", "needs one")
    status = fit_status(final, tol).loc[sel.index]
    above = sel[(sel["train_err"] > tol.train_zero) | diverged(sel)]
    levelled_above = above[~status.loc[above.index].isin(UNSETTLED)]
    n_int = int(sel["interpolated"].sum())
    measured = (f"max train err {float(sel['train_err'].max()):.4f} over {len(sel)} runs with {where_text}; "
                f"{n_int}/{len(sel)} reached 0 (interpolated); by run: "
                + ", ".join(f"N={n} W={w}: {e:.4f} ({st})" for n, w, e, st in
                            zip(sel["N"], sel["n_params"], sel["train_err"], status)))
    why = None if above.empty or len(levelled_above) else unsettled_reason(above, status)
    return claim(cid, text, above.empty, measured,
                 f"refuted if a run that levelled off has train err > {tol.train_zero}; "
                 f"inconclusive if only unsettled runs do", inconclusive=why)


def does_not_fit(cid, text, final: pd.DataFrame, where: pd.Series, where_text: str, tol: Tolerances) -> dict:
    """Every converged or levelled run with ``where`` keeps a training error above
    ``train_zero``; runs still falling at their cap (or bouncing, dead, diverged) are left
    out and counted."""
    status = fit_status(final, tol)
    sel = final[where]
    used = sel[~status.loc[sel.index].isin(UNSETTLED)]
    if sel.empty:
        return untestable(cid, text, f"no run with {where_text} in the grid", "needs one")
    if used.empty:
        return untestable(cid, text, f"no converged run with {where_text} ({len(sel)} in the grid)",
                          f"needs a converged run with {where_text}; {_excluded(sel, status)}",
                          reason=unsettled_reason(sel, status))
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
        return untestable(cid, text, f"no converged run ({len(final)} in the grid)",
                          f"needs converged runs to find the first N with train err > {tol.train_zero}; "
                          f"{_excluded(final, status)}", reason=unsettled_reason(final, status))
    if unfit.empty:
        # Refuted only if the converged runs reach past the bracket; otherwise the grid (or
        # the unsettled runs above it) cannot say where the fit ends.
        past = pts.index.max() >= hi
        return claim(cid, text, False, f"train err <= {tol.train_zero} at every converged N up to {pts.index.max()}",
                     f"fails unless the first N with train err > {tol.train_zero} lies in [{lo:.0f}, {hi:.0f}]; "
                     f"{_excluded(final, status)}",
                     inconclusive=None if past else (unsettled_reason(final[final["N"] > pts.index.max()], status)
                                                     if (final["N"] > pts.index.max()).any() else UNTESTABLE))
    n1 = int(unfit.index[0])
    # A first unfit N past the bracket, with an unsettled run inside it, might have been earlier: inconclusive.
    inside_unsettled = final[(final["N"] >= lo) & (final["N"] <= hi) & status.isin(UNSETTLED)]
    why = unsettled_reason(inside_unsettled, status) if n1 > hi and len(inside_unsettled) else None
    return claim(cid, text, lo <= n1 <= hi,
                 f"train err first above {tol.train_zero} at N = {n1} = {n1 / W:.2f} W; by N: {_fmt(pts.index, pts)}",
                 f"fails unless that N lies in [W/{f:g}, {f:g} W] = [{lo:.0f}, {hi:.0f}]; {_excluded(final, status)}",
                 inconclusive=why)


def near_chance_at_largest_n(cid, text, final: pd.DataFrame, W: int, tol: Tolerances) -> dict:
    """Random labels at the largest N, which must be at least fit_boundary_factor x W: train
    error at least ``chance_fraction`` of chance (converged runs only)."""
    status = fit_status(final, tol)
    n_max = int(final["N"].max())
    chance = 1 - 1 / int(final["num_classes"].iloc[0])
    need = tol.fit_boundary_factor * W
    at_all = final[final["N"] == n_max]
    at = at_all[~status.loc[at_all.index].isin(UNSETTLED)]
    bar = tol.chance_fraction * chance
    if n_max < need:
        return untestable(cid, text, f"largest N = {n_max} < {need:.0f}",
                          f"needs a converged run at N >= {tol.fit_boundary_factor:g} W", reason=OUT_OF_REGIME)
    if at.empty:
        return untestable(cid, text, f"no converged run at N = {n_max}", _excluded(at_all, status),
                          reason=unsettled_reason(at_all, status))
    err = float(at["train_err"].mean())
    return claim(cid, text, err >= bar, f"train err {err:.3f} at N = {n_max} = {n_max / W:.1f} W (chance {chance:.3f})",
                 f"fails if below {tol.chance_fraction:g} x chance = {bar:.3f}; {_excluded(at_all, status)}")


def gap_at_largest_n(cid, text, points: pd.DataFrame, W: int, tol: Tolerances) -> dict:
    """At the largest N of the grid, which must exceed W, the test-train gap is at most
    ``gap_at_largest_n``, beyond noise either way."""
    last = points.sort_values("N").iloc[-1]
    if last["N"] <= W:
        return untestable(cid, text, f"largest N = {int(last['N'])} <= W = {W}", "needs a grid point with N > W",
                          reason=OUT_OF_REGIME)
    gap, se = float(last["gap"]), float(last["gap_se"])
    held, why = versus(gap, se, tol.gap_at_largest_n, tol.noise_z, below=True)
    return claim(cid, text, held,
                 f"gap {gap:.3f} +- {se:.3f} (test {last['test_err']:.3f} - train {last['train_err']:.3f}) at "
                 f"N = {int(last['N'])} = {last['N'] / W:.1f} W",
                 f"held if the gap is below {tol.gap_at_largest_n} by {tol.noise_z:g} se, refuted if above by as much",
                 inconclusive=why)


def fits_at_first_w_past_n(cid, text, final: pd.DataFrame, N: int, tol: Tolerances) -> dict:
    """memo073 Fig 3, "zero error as soon as W = N": the first grid W >= N lies within
    w_bracket_factor x N and its runs reach train error <= train_zero (refuted only by a
    run that levelled off above it)."""
    past = final[final["n_params"] >= N]
    f = tol.w_bracket_factor
    if past.empty:
        return untestable(cid, text, f"no grid W >= N = {N}", "needs grid widths around W = N")
    w1 = int(past["n_params"].min())
    at = past[past["n_params"] == w1]
    if w1 > f * N:
        return untestable(cid, text, f"first grid W >= N is {w1} = {w1 / N:.2f} N", f"needs a grid W in [N, {f:g} N]: add widths")
    worst = float(at["train_err"].max())
    status = fit_status(final, tol)
    above = at[(at["train_err"] > tol.train_zero) | diverged(at)]
    why = (unsettled_reason(above, status) if len(above) and status.loc[above.index].isin(UNSETTLED).all()
           else None)
    return claim(cid, text, above.empty,
                 f"train err {worst:.4f} at the first grid W >= N: W = {w1} = {w1 / N:.2f} N "
                 f"({int(at['interpolated'].sum())}/{len(at)} runs exactly 0; {', '.join(status.loc[at.index])})",
                 f"fails if a run that levelled off stays above {tol.train_zero}", inconclusive=why)
