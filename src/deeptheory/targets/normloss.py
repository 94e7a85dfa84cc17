"""memo100 Fig 3 (and memo090): test against training cross-entropy of nets fit to zero
training error from many inits, raw and normalized (each layer divided by its Frobenius
norm).

Each run is analysed alone (``ANALYZE``; the computation is in
``deeptheory.analyses.normloss``). The build keeps, as the memo does, only nets whose
training error is exactly 0 and fits two lines through the natural-label nets' (train,
test) points: a free least-squares line and the memo's line of slope 1 (its intercept is
the mean gap). memo100's bound says the normalized test loss follows the normalized
training loss up to an offset: the normalized points should lie near a line of slope about
1, the raw ones not; a net fit to random labels, whose test error is at chance, should sit
off the natural nets' line.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from matplotlib import colors
from scipy import stats

from .. import claims as C
from .. import plots
from ..analyses import normloss as NL
from . import Analysis, Inputs, Outcome

# A line through two points fits them exactly: its standard errors need n - 2 >= 1.
MIN_NETS = 3
LOSSES = {"raw": ("train_loss", "test_loss"), "normalized": ("train_loss_norm", "test_loss_norm")}


def analyze(runs, cfg: dict, seed: int) -> Analysis:
    return Analysis(NL.table(runs))


# --- fits ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Fit:
    """A line test = slope x train + intercept with 95% intervals; R^2 and RMSE of its
    residuals. The slope-1 fit has no slope interval (the slope is fixed) and no R^2 interval."""
    kind: str
    n: int
    slope: float
    slope_lo: float
    slope_hi: float
    intercept: float
    intercept_lo: float
    intercept_hi: float
    r2: float
    r2_lo: float
    r2_hi: float
    rmse: float

    def predict(self, x):
        return self.slope * np.asarray(x, float) + self.intercept

    def text(self) -> str:
        def iv(v, lo, hi):
            return f"{v:.4g} [{lo:.4g}, {hi:.4g}]" if np.isfinite(lo) else f"{v:.4g}"
        slope = iv(self.slope, self.slope_lo, self.slope_hi) if self.kind == "free" else "1 (fixed)"
        intercept = iv(self.intercept, self.intercept_lo, self.intercept_hi)
        return (f"{self.kind} fit: slope {slope}, intercept {intercept}, R^2 {iv(self.r2, self.r2_lo, self.r2_hi)}, "
                f"RMSE {self.rmse:.3g}")


def _r2(y, resid) -> float:
    total = float(((y - y.mean()) ** 2).sum())
    return 1 - float((resid ** 2).sum()) / total if total > 0 else float("nan")


def free_fit(x, y) -> Fit:
    """Least squares; 95% intervals of slope and intercept from their standard errors (t, n - 2
    degrees of freedom), of R^2 = r^2 from Fisher's z of r (needs n >= 4)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    r = stats.linregress(x, y)
    t = stats.t.ppf(0.975, n - 2)
    resid = y - (r.slope * x + r.intercept)
    if n > 3 and abs(r.rvalue) < 1:
        z = np.arctanh(r.rvalue) + np.array([-1, 1]) * stats.norm.ppf(0.975) / np.sqrt(n - 3)
        lo, hi = np.tanh(z)
        r2_lo, r2_hi = (0.0 if lo < 0 < hi else min(lo ** 2, hi ** 2)), max(lo ** 2, hi ** 2)
    else:
        r2_lo = r2_hi = float("nan")
    return Fit("free", n, float(r.slope), r.slope - t * r.stderr, r.slope + t * r.stderr, float(r.intercept),
               r.intercept - t * r.intercept_stderr, r.intercept + t * r.intercept_stderr, _r2(y, resid),
               float(r2_lo), float(r2_hi), float(np.sqrt(np.mean(resid ** 2))))


def slope_one_fit(x, y) -> Fit:
    """The memo's line of slope 1: its intercept is the mean gap (test - train), with the
    95% t interval of a mean."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    gap = y - x
    n = len(x)
    half = stats.t.ppf(0.975, n - 1) * gap.std(ddof=1) / np.sqrt(n)
    resid = gap - gap.mean()
    nan = float("nan")
    return Fit("slope-1", n, 1.0, nan, nan, float(gap.mean()), gap.mean() - half, gap.mean() + half, _r2(y, resid),
               nan, nan, float(np.sqrt(np.mean(resid ** 2))))


def fits(natural: pd.DataFrame) -> dict[str, dict[str, Fit]]:
    """Both lines through the kept natural-label nets, raw and normalized; empty where too
    few nets (or a single training loss) leave a line undetermined."""
    out = {}
    for kind, (x, y) in LOSSES.items():
        if len(natural) >= MIN_NETS and np.ptp(natural[x].to_numpy(float)) > 0:
            out[kind] = {"free": free_fit(natural[x], natural[y]), "slope-1": slope_one_fit(natural[x], natural[y])}
    return out


# --- the nets ------------------------------------------------------------------------------

def nets(inp: Inputs) -> pd.DataFrame:
    """One row per net: its analysis row, its epochs trained, and whether it is kept (train
    error exactly 0 on its training subset, finite losses)."""
    rows = inp.analyses.copy()
    final = inp.runs[inp.runs["final"].astype(bool)][["run_id", "epoch"]]
    rows = rows.merge(final, on="run_id", how="left")
    finite = np.isfinite(rows[[c for pair in LOSSES.values() for c in pair]].to_numpy(float)).all(axis=1)
    rows["kept"] = (rows["train_err"] == 0) & finite
    return rows.sort_values(["labels", "init_scale", "seed"]).reset_index(drop=True)


def with_residuals(rows: pd.DataFrame, fit: Fit | None) -> pd.DataFrame:
    """Each net's distance from the natural nets' normalized free fit, in nats and in RMSEs."""
    if fit is None:
        return rows.assign(residual_norm=np.nan, residual_over_rmse=np.nan)
    resid = rows["test_loss_norm"] - fit.predict(rows["train_loss_norm"])
    return rows.assign(residual_norm=resid, residual_over_rmse=resid / fit.rmse)


def _kept_text(rows: pd.DataFrame, labels: str) -> str:
    sel = rows[rows["labels"] == labels]
    return f"{int(sel['kept'].sum())} of {len(sel)} {labels}-label nets kept (train error exactly 0)"


# --- claims --------------------------------------------------------------------------------

def claims_of(rows: pd.DataFrame, found: dict, tol) -> list[dict]:
    natural = rows[(rows["labels"] == "natural") & rows["kept"]]
    random = rows[(rows["labels"] == "random") & rows["kept"]]
    kept_nat = _kept_text(rows, "natural")
    short = f"{kept_nat}; a line needs {MIN_NETS} nets with distinct training losses"
    return [normalized_slope_one(found, kept_nat, short, tol), raw_off_line(found, kept_nat, short, tol),
            random_off_line(rows, random, found, short, tol), random_at_chance(rows, random, tol)]


def normalized_slope_one(found: dict, kept: str, short: str, tol) -> dict:
    cid = "m100-norm-loss:normalized-slope-one"
    text = "normalized natural-label losses lie near a line of slope about 1"
    rule = (f"fails if the free fit's slope differs from 1 by more than {tol.normloss_slope_tol:g} or its "
            f"R^2 < {tol.normloss_min_r2:g}")
    if "normalized" not in found:
        return C.untestable(cid, text, short, rule)
    free, one = found["normalized"]["free"], found["normalized"]["slope-1"]
    held = abs(free.slope - 1) <= tol.normloss_slope_tol and free.r2 >= tol.normloss_min_r2
    return C.claim(cid, text, held, f"{kept}; {free.text()}; {one.text()}", rule)


def raw_off_line(found: dict, kept: str, short: str, tol) -> dict:
    """memo100 Fig 3 left: nets at zero training error whose raw training losses say nothing
    of their test losses. Read as: the raw free fit explains much less of the test loss than
    the normalized one (R^2 lower by ``normloss_r2_margin``). A slope far from 1 alone would
    not do: raw points on a steep but tight line would predict the test loss as well."""
    cid, text = "m100-norm-loss:raw-off-line", "raw losses do not lie near a line (the normalized ones do)"
    rule = f"fails unless the raw free fit's R^2 is below the normalized one's by at least {tol.normloss_r2_margin:g}"
    if "raw" not in found or "normalized" not in found:
        return C.untestable(cid, text, short, rule)
    raw, norm = found["raw"]["free"], found["normalized"]["free"]
    return C.claim(cid, text, raw.r2 <= norm.r2 - tol.normloss_r2_margin,
                   f"{kept}; raw {raw.text()}; normalized R^2 {norm.r2:.4g}", rule)


def random_off_line(rows: pd.DataFrame, random: pd.DataFrame, found: dict, short: str, tol) -> dict:
    cid, text = "m100-norm-loss:random-off-line", "random-label nets sit off the natural nets' normalized line"
    k = tol.normloss_offline_k
    rule = f"fails if any kept random-label net lies within {k:g} RMSE of the natural nets' normalized free fit"
    if "normalized" not in found:
        return C.untestable(cid, text, short, rule)
    if random.empty:
        return C.untestable(cid, text, _kept_text(rows, "random"), rule)
    fit = found["normalized"]["free"]
    resid = with_residuals(random, fit)["residual_over_rmse"]
    return C.claim(cid, text, bool((resid.abs() > k).all()),
                   f"{_kept_text(rows, 'random')}; residuals (test loss above the line, in RMSE = {fit.rmse:.3g}) "
                   "by init scale: " + ", ".join(f"{s:g}: {r:+.1f}" for s, r in zip(random["init_scale"], resid)),
                   rule)


def random_at_chance(rows: pd.DataFrame, random: pd.DataFrame, tol) -> dict:
    """memo100 Fig 3: the random-label net "shows zero classification error at training and
    test error at chance level"."""
    cid, text = "m100-norm-loss:random-at-chance", "random-label nets fit to zero train error test at chance"
    if random.empty:
        return C.untestable(cid, text, _kept_text(rows, "random"), "needs a random-label net with train error exactly 0")
    row = C.at_chance(cid, text, random, int(random["num_classes"].iloc[0]), tol)
    return {**row, "measured": f"{_kept_text(rows, 'random')}; {row['measured']}"}


# --- figure --------------------------------------------------------------------------------

def _panel(ax, rows: pd.DataFrame, kind: str, found: dict, scale_norm) -> object:
    x, y = LOSSES[kind]
    kept, dropped = rows[rows["kept"]], rows[~rows["kept"]]
    natural, random = kept[kept["labels"] == "natural"], kept[kept["labels"] == "random"]
    shown = kept if len(kept) else rows
    lo = float(np.nanmin(shown[[x, y]].to_numpy(float)))
    hi = float(np.nanmax(shown[[x, y]].to_numpy(float)))
    span = np.linspace(float(shown[x].min()), float(shown[x].max()), 2)
    ax.plot([lo, hi], [lo, hi], color="grey", ls=":", lw=1, label="test = train")
    if kind in found:
        free, one = found[kind]["free"], found[kind]["slope-1"]
        ax.plot(span, free.predict(span), color="black", lw=1,
                label=f"free fit: slope {free.slope:.2f}, R$^2$ {free.r2:.2f}")
        ax.plot(span, one.predict(span), color="black", ls="--", lw=1,
                label=f"slope-1 fit: mean gap {one.intercept:.3g}, R$^2$ {one.r2:.2f}")
    points = ax.scatter(natural[x], natural[y], c=natural["init_scale"], cmap="viridis", norm=scale_norm, s=28,
                        edgecolors="black", linewidths=0.4, label="natural labels", zorder=3)
    ax.scatter(random[x], random[y], color="red", marker="X", s=60, label="random labels", zorder=3)
    if len(dropped):
        ax.scatter(dropped[x], dropped[y], facecolors="none", edgecolors="grey", s=28,
                   label=f"train err > 0 (left out: {len(dropped)})", zorder=2)
    ax.set_xlabel(f"training cross-entropy, {kind} (nats)")
    ax.set_ylabel(f"test cross-entropy, {kind} (nats)")
    ax.set_title("normalized: each layer / its Frobenius norm" if kind == "normalized" else "raw", fontsize=8)
    ax.legend(fontsize=6)
    return points


def _draw(rows: pd.DataFrame, found: dict):
    def draw(caption, png, pdf):
        fig, axes = plots.panels(2, 4.8, 4.0)
        scales = rows["init_scale"].to_numpy(float)
        scale_norm = colors.LogNorm(scales.min(), scales.max()) if scales.max() > scales.min() else None
        for ax, kind in zip(axes, LOSSES):
            points = _panel(ax, rows, kind, found, scale_norm)
        if (rows["kept"] & (rows["labels"] == "natural")).any():
            bar = fig.colorbar(points, ax=axes[1], label="init scale (x PyTorch's default bound)")
            bar.set_ticks(sorted(set(scales)), labels=[f"{s:g}" for s in sorted(set(scales))])
            bar.ax.minorticks_off()
        plots.save(fig, caption, png, pdf)
    return draw


def _setup(rows: pd.DataFrame) -> str:
    first = rows.iloc[0]
    scales = ", ".join(f"{s:g}" for s in sorted(rows["init_scale"].unique()))
    return (f"model {first['model']} at width {int(first['width'])}, W = {int(first['n_params']):,} weights; "
            f"N = {int(first['N']):,}; init scales {scales}; {rows['seed'].nunique()} seed(s); "
            f"{_kept_text(rows, 'natural')}, {_kept_text(rows, 'random')}; losses on the training subset and "
            f"the first {int(first['n_test']):,} test images")


def build(inp: Inputs) -> Outcome:
    rows = nets(inp)
    found = fits(rows[(rows["labels"] == "natural") & rows["kept"]])
    table = with_residuals(rows, found.get("normalized", {}).get("free"))
    kept_fits = {kind: {name: asdict(f) for name, f in pair.items()} for kind, pair in found.items()}
    return Outcome(table, claims_of(rows, found, inp.tol), _draw(rows, found), _setup(rows), extra={"fits": kept_fits})


ANALYZE = {"m100-norm-loss": analyze}
BUILD = {"m100-norm-loss": build}
