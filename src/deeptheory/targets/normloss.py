"""memo100 Fig 3 (and memo090): test against training cross-entropy of nets fit to zero
training error from many inits, raw and normalized (each layer divided by its Frobenius
norm).

Each run is analysed alone (its ``analyzer``; the computation is in
``deeptheory.analyses.normloss``). The build keeps, as the memo does, only nets whose
training error is exactly 0 and fits two lines through the natural-label nets' (train,
test) points: a free least-squares line and the memo's line of slope 1 (its intercept is
the mean gap). memo100's caption: "The top line is a square-loss regression of slope 1 with
positive intercept", the bound L(f~) <= L^(f~) + (a small offset): the normalized points
should lie near the slope-1 line, above the diagonal, the raw ones near no line; a net fit
to random labels, whose test error is at chance, should sit off the natural nets' line.

Normalizing shrinks every net's outputs, so every normalized loss lies a little below
ln(classes) and every point near (ln C, ln C). A line through the natural points passes near
that corner, and so does any net whose normalized outputs are nearly constant, whatever it
learned: its distance from the line (or its test - train gap) is small because its outputs
are, not because it generalizes. For small logits the loss is ln C minus the mean margin of
the true class (to first order), so the share of the training margin a net keeps on test,
(ln C - test loss) / (ln C - train loss), does not depend on the size of the outputs: it is
the slope of the ray from (ln C, ln C) to the net's point. The random-label claim compares
that share with the natural nets' spread of it.
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
from . import Analysis, Inputs, Outcome, Target

# The registry's entries (deeptheory.targets): plain literals, read without importing this module.
TARGETS = [
    Target(
        id="m100-norm-loss",
        source="memo100 Fig 3; memo090",
        what="test vs train cross-entropy of nets fit from many inits, raw and with each layer divided by its "
             "Frobenius norm",
        claims="the normalized losses of the natural-label nets lie near a line of slope about 1 (free and slope-1 "
               "fits with R^2 and RMSE); the raw losses do not; the random-label nets sit off that line and test at "
               "chance",
        caption="test vs training cross-entropy of nets fit to zero training error from many inits, raw (left) and "
                "with each layer divided by its Frobenius norm (right); random-label nets marked in red",
        builder="build",
        analyzer="analyze",
        unit="all",
        sweep="grid",
    ),
]

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
    intercept_se: float = float("nan")

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
    half = stats.t.ppf(0.975, n - 1) * gap.std(ddof=1) / np.sqrt(n)   # the intercept_se below, times t
    resid = gap - gap.mean()
    nan = float("nan")
    return Fit("slope-1", n, 1.0, nan, nan, float(gap.mean()), gap.mean() - half, gap.mean() + half, _r2(y, resid),
               nan, nan, float(np.sqrt(np.mean(resid ** 2))), float(gap.std(ddof=1) / np.sqrt(n)))


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
    final = C.final_rows(inp.runs)[["run_id", "epoch"]]
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


def with_margin_share(rows: pd.DataFrame, natural: pd.DataFrame) -> pd.DataFrame:
    """Each net's margin share (``margin_kept``) and its distance from the natural nets' mean
    share in units of their prediction spread, sd x sqrt(1 + 1/n): where a new natural net's
    share would fall (``margin_kept_z``; NaN with fewer than 2 natural shares)."""
    share = margin_kept(rows)
    nat = margin_kept(natural).dropna() if len(natural) else pd.Series(dtype=float)
    if len(nat) < 2 or not nat.std(ddof=1) > 0:
        return rows.assign(margin_kept=share, margin_kept_z=np.nan)
    spread = float(nat.std(ddof=1) * np.sqrt(1 + 1 / len(nat)))
    return rows.assign(margin_kept=share, margin_kept_z=(share - float(nat.mean())) / spread)


def margin_kept(rows: pd.DataFrame) -> pd.Series:
    """(ln C - normalized test loss) / (ln C - normalized training loss): the share of its
    training margin a normalized net keeps on test, free of the size of its outputs (module
    docstring). NaN where the training loss is not below ln C (no margin to keep)."""
    log_c = np.log(rows["num_classes"].astype(float))
    below = log_c - rows["train_loss_norm"]
    return ((log_c - rows["test_loss_norm"]) / below.where(below > 0)).astype(float)


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
            random_off_line(rows, random, natural, found, short, tol), random_at_chance(rows, random, tol)]


def normalized_slope_one(found: dict, kept: str, short: str, tol) -> dict:
    """memo100 Fig 3 right: "The top line is a square-loss regression of slope 1 with positive
    intercept" through the normalized points, read from the bound L(f~) <= L^(f~) + offset.
    Judged on that line, the slope fixed at 1 (its intercept the mean gap test - train): it
    must explain the points (R^2 of the test losses at least ``normloss_min_r2``) and its
    intercept must be positive beyond ``noise_z`` standard errors of the mean gap. A negative
    intercept beyond noise, or a slope-1 line that explains too little, refutes; an intercept
    within noise of 0 is inconclusive. The free fit is reported beside it, not judged: the memo
    states no free slope, and normalizing presses every point toward (ln C, ln C), which pulls
    a free slope below 1 (module docstring)."""
    cid = "m100-norm-loss:normalized-slope-one"
    text = "normalized natural-label losses lie near a line of slope 1 with positive intercept"
    z = tol.noise_z
    rule = (f"held if the slope-1 line's R^2 >= {tol.normloss_min_r2:g} and its intercept (the mean gap test - train) "
            f"exceeds {z:g} standard errors; refuted if R^2 < {tol.normloss_min_r2:g} or the intercept is below "
            f"-{z:g} standard errors; inconclusive if the intercept is within {z:g} standard errors of 0")
    if "normalized" not in found:
        return C.untestable(cid, text, short, rule)
    free, one = found["normalized"]["free"], found["normalized"]["slope-1"]
    se = one.intercept_se
    fits_line = one.r2 >= tol.normloss_min_r2
    positive, negative = one.intercept > z * se, one.intercept < -z * se
    excludes = "excludes" if not free.slope_lo <= 1 <= free.slope_hi else "includes"
    measured = (f"{kept}; {one.text()}, intercept / se = {one.intercept / se:.2f}; beside it (not judged), "
                f"{free.text()}: its slope interval {excludes} 1")
    return C.claim(cid, text, fits_line and positive, measured, rule,
                   inconclusive=C.verdict_of(fits_line and positive, not fits_line or negative, C.WITHIN_NOISE))


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


def random_off_line(rows: pd.DataFrame, random: pd.DataFrame, natural: pd.DataFrame, found: dict, short: str,
                    tol) -> dict:
    """memo100 Fig 3: the random-label net (test error at chance) is the red point off the
    natural nets' line. Its distance from the line in nats, or its test - train gap, shrinks
    with the size of its normalized outputs: a net whose normalized losses both sit near
    ln C lies near any line through that corner whatever it learned. Judged instead by the
    share of its training margin it keeps on test, (ln C - test) / (ln C - train), the slope
    of the ray from (ln C, ln C) to its point, which does not depend on that size (module
    docstring): every random-label net's share must lie beyond ``normloss_offline_k``
    prediction spreads of the natural nets' shares (sd x sqrt(1 + 1/n)); one within them
    refutes."""
    cid, text = "m100-norm-loss:random-off-line", "random-label nets sit off the natural nets' normalized line"
    k = tol.normloss_offline_k
    rule = (f"held if every kept random-label net's margin share (ln C - test) / (ln C - train), normalized losses, "
            f"lies beyond {k:g} prediction spreads (sd x sqrt(1 + 1/n)) of the natural nets' shares; refuted if one "
            f"lies within; a net whose normalized training loss is not below ln C has no share and is left out; "
            f"inconclusive if a share of 0 (no margin kept) lies within {k:g} spreads of the natural mean")
    if "normalized" not in found:
        return C.untestable(cid, text, short, rule)
    if random.empty:
        return C.untestable(cid, text, _kept_text(rows, "random"), rule)
    nat = with_margin_share(natural, natural)["margin_kept"].dropna()
    scored = with_margin_share(random, natural)
    zs, shares = scored["margin_kept_z"], scored["margin_kept"]
    if len(nat) < 2 or zs.isna().all():
        return C.untestable(cid, text, f"{_kept_text(rows, 'random')}; natural shares: {len(nat)}; random shares: "
                            f"{int(shares.notna().sum())}", rule)
    # A net that keeps none of its margin (share 0: test loss at ln C, as at chance) must be told from the natural
    # nets, or no share could be: where 0 lies within k spreads of their mean, the natural scatter is too wide.
    spread = float(nat.std(ddof=1) * np.sqrt(1 + 1 / len(nat)))
    no_power = abs(float(nat.mean())) / spread <= k
    # Beside it, not judged: the distance from the slope-1 line, (test - train) - mean natural gap, in prediction
    # spreads of the natural gaps. It shrinks with a net's outputs (a net at (ln C, ln C) has gap 0 whatever it learned).
    one = found["normalized"]["slope-1"]
    gap_spread = one.intercept_se * np.sqrt(one.n) * np.sqrt(1 + 1 / one.n)
    gap_z = ((random["test_loss_norm"] - random["train_loss_norm"]) - one.intercept) / gap_spread
    left = int(zs.isna().sum())
    measured = (f"{_kept_text(rows, 'random')}{f' ({left} without a margin share, left out)' if left else ''}; natural "
                f"nets' margin share {nat.mean():.3f} (sd {nat.std(ddof=1):.3f}, n = {len(nat)}); random-label shares "
                "(distance in prediction spreads) by init scale: "
                + ", ".join(f"{s:g}: {v:.3f} ({d:+.1f})" for s, v, d in zip(random["init_scale"], shares, zs))
                + f"; beside them (not judged), distance from the slope-1 line in prediction spreads of the natural gaps "
                f"({gap_spread:.3g}): " + ", ".join(f"{s:g}: {g:+.1f}" for s, g in zip(random["init_scale"], gap_z)))
    if no_power:
        measured += f"; a share of 0 lies {abs(float(nat.mean())) / spread:.1f} spreads from the natural mean: too close"
    return C.claim(cid, text, bool((zs.dropna().abs() > k).all()), measured, rule,
                   inconclusive=C.UNTESTABLE if no_power else None)


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
    natural = rows[(rows["labels"] == "natural") & rows["kept"]]
    found = fits(natural)
    table = with_margin_share(with_residuals(rows, found.get("normalized", {}).get("free")), natural)
    kept_fits = {kind: {name: asdict(f) for name, f in pair.items()} for kind, pair in found.items()}
    return Outcome(table, claims_of(rows, found, inp.tol), _draw(rows, found), _setup(rows), extra={"fits": kept_fits})
