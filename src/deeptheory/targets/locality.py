"""slides-locality: test error against parameter count of a convolutional net (local, weights
shared), a locally connected net (the same locality, nothing shared) and a fully connected net
of the same depth (slides "Locality of constituent functions is key: CIFAR"; memo100 section
1.A: "the key aspect of convolutional networks that can give them an exponential advantage is
not weight sharing but locality at each level of the hierarchy").

The families differ in parameter count at every width, so they are compared at matched
parameter count: each family's test error (mean over seeds at each width) is interpolated
linearly in log10 W, and read over the range of W that every family's grid covers (the
overlap). The two gaps, fully connected minus locally connected (what locality gives) and
locally connected minus convolutional (what weight sharing adds), are their means over the
overlap, i.e. the mean of each family's interpolated curve there; the detail also gives them at
the overlap's ends and its geometric middle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import seaborn as sns

from .. import claims as C
from .. import plots
from . import Inputs, Outcome, Target

# The registry's entries (deeptheory.targets): plain literals, read without importing this module.
TARGETS = [
    Target(
        id="slides-locality",
        source='slides "Locality of constituent functions is key: CIFAR"; memo100 section 1.A',
        what="test error vs parameters of a convolutional, a locally connected and a fully connected net of one "
             "depth",
        claims="(memo100: \"not weight sharing but locality\") at matched W (each family's test error interpolated "
               "linearly in log W and averaged over the shaded overlap), the fully connected minus locally connected "
               "gap exceeds the locally connected minus convolutional gap; and the locally connected net beats the "
               "fully connected one there",
        caption="test error against the number of parameters W (log scale) of a convolutional net (local, weights "
                "shared), a locally connected net (the same kernels and strides, a separate filter at every "
                "position) and a fully connected net, all with three hidden layers, one sub-grid of runs per family; "
                "one line per family, the shaded band the range of W every family's grid covers",
        builder="build",
        sweep="grid",
    ),
]

# The roles of the three families (deeptheory.models.locality), in the order of the figure's legend.
FAMILY = {"fc": "fcnet", "lc": "localnet", "conv": "convnet"}
LABEL = {"fc": "fully connected (fcnet)", "lc": "locally connected (localnet)", "conv": "convolutional (convnet)"}
READ_POINTS = 101  # points of the overlap, evenly spaced in log10 W, the gaps are averaged over


# --- matched parameter count -----------------------------------------------------------------

def by_family(final: pd.DataFrame) -> pd.DataFrame:
    """One row per family and width: errors (mean and sd over seeds) and W."""
    parts = []
    for role, model in FAMILY.items():
        rows = final[final["model"] == model]
        if rows.empty:
            continue
        pts = C.by_point(rows, "n_params")
        pts.insert(0, "width", rows.groupby("n_params")["width"].first().reindex(pts["n_params"]).values)
        pts.insert(0, "family", model)
        pts.insert(0, "role", role)
        parts.append(pts)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["role", "family", "n_params"])


def overlap(points: pd.DataFrame) -> tuple[float, float] | None:
    """The range of W (lo, hi) inside every family's grid; None if some family is missing or
    the ranges do not meet."""
    if set(points["role"]) != set(FAMILY):
        return None
    spans = points.groupby("role")["n_params"].agg(["min", "max"])
    lo, hi = float(spans["min"].max()), float(spans["max"].min())
    return (lo, hi) if lo <= hi else None


def error_at(points: pd.DataFrame, role: str, W) -> np.ndarray:
    """A family's mean test error at W, linear in log10 W between its grid points."""
    pts = points[points["role"] == role].sort_values("n_params")
    return np.interp(np.log10(W), np.log10(pts["n_params"].to_numpy(float)), pts["test_err"].to_numpy(float))


@dataclass(frozen=True)
class Matched:
    """The families' errors at matched W over the overlap [lo, hi]."""
    lo: float
    hi: float
    mean: dict          # role -> mean interpolated test error over the overlap
    at: dict            # "lo" / "mid" / "hi" -> {role: error there}

    @property
    def gap_fc_lc(self) -> float:
        return self.mean["fc"] - self.mean["lc"]

    @property
    def gap_lc_conv(self) -> float:
        return self.mean["lc"] - self.mean["conv"]

    def gaps_at(self, where: str) -> tuple[float, float]:
        e = self.at[where]
        return e["fc"] - e["lc"], e["lc"] - e["conv"]


def matched(points: pd.DataFrame) -> Matched | None:
    span = overlap(points)
    if span is None:
        return None
    lo, hi = span
    grid = np.logspace(np.log10(lo), np.log10(hi), READ_POINTS)
    where = {"lo": lo, "mid": float(np.sqrt(lo * hi)), "hi": hi}
    return Matched(lo, hi, {r: float(error_at(points, r, grid).mean()) for r in FAMILY},
                   {k: {r: float(error_at(points, r, w)) for r in FAMILY} for k, w in where.items()})


def _ranges(points: pd.DataFrame) -> str:
    spans = points.groupby("family")["n_params"].agg(["min", "max"])
    return "; ".join(f"{f} W = {int(r['min']):,} to {int(r['max']):,}" for f, r in spans.iterrows())


def _best(points: pd.DataFrame) -> str:
    """Each family's lowest test error over its grid, whatever its W."""
    best = points.loc[points.groupby("family")["test_err"].idxmin()]
    return "best test error: " + ", ".join(
        f"{r.family} {r.test_err:.3f} (width {int(r.width)}, W = {int(r.n_params):,})" for r in best.itertuples())


def _read(m: Matched) -> str:
    ends = "; ".join(f"at {k} (W = {w:,.0f}): fc - lc {a:+.3f}, lc - conv {b:+.3f}"
                     for k, w in (("lo", m.lo), ("mid", np.sqrt(m.lo * m.hi)), ("hi", m.hi))
                     for a, b in [m.gaps_at(k)])
    return (f"overlap W = {m.lo:,.0f} to {m.hi:,.0f}; mean test error there: fc {m.mean['fc']:.3f}, "
            f"lc {m.mean['lc']:.3f}, conv {m.mean['conv']:.3f}; gaps fc - lc {m.gap_fc_lc:+.3f}, "
            f"lc - conv {m.gap_lc_conv:+.3f}; {ends}")


READ_RULE = (f"each family's mean test error interpolated linearly in log10 W and averaged over "
             f"{READ_POINTS} log-spaced W of the overlap of the families' W ranges")


CLAIMS = (
    ("slides-locality:locality-not-sharing",
     "locality, not weight sharing, gives most of the gain: at matched W, fully connected minus locally "
     "connected test error exceeds locally connected minus convolutional"),
    ("slides-locality:locality-gains",
     "locality alone helps: at matched W the locally connected net's test error is below the fully connected one's"),
)


def claims_of(points: pd.DataFrame, n_test: int, tol) -> list[dict]:
    """Both claims read against noise_z standard errors: each family's mean test error over
    the overlap is taken to carry one evaluation's binomial error at n_test (its points are
    nets scored on the same test images), so a gap's error adds two of them and the
    difference of the two gaps, fc - 2 lc + conv, three (lc's twice)."""
    m = matched(points)
    if m is None:
        short = f"the families' W ranges do not overlap ({_ranges(points)}); {_best(points)}"
        return [C.untestable(cid, text, short, "needs a range of W that every family's grid covers")
                for cid, text in CLAIMS]
    (main_id, main_text), (gain_id, gain_text) = CLAIMS
    se = {r: float(C.binomial_se(m.mean[r], n_test)) for r in FAMILY}
    z = tol.noise_z
    diff, diff_se = m.gap_fc_lc - m.gap_lc_conv, float(np.sqrt(se["fc"] ** 2 + 4 * se["lc"] ** 2 + se["conv"] ** 2))
    gain_se = float(np.hypot(se["fc"], se["lc"]))
    ends = ", ".join(f"{k} {m.gaps_at(k)[0]:+.3f}" for k in ("lo", "mid", "hi"))
    gain = (f"overlap W = {m.lo:,.0f} to {m.hi:,.0f}; mean test error there: fc {m.mean['fc']:.3f}, lc "
            f"{m.mean['lc']:.3f}; gap fc - lc {m.gap_fc_lc:+.3f} +- {gain_se:.3f} (at the overlap's {ends})")
    return [
        C.claim(main_id, main_text, diff > z * diff_se,
                f"{_read(m)}; (fc - lc) - (lc - conv) = {diff:+.3f} +- {diff_se:.3f}; {_best(points)}",
                f"held if gap fc - lc exceeds gap lc - conv by {z:g} se, refuted if it falls short by as much, "
                f"{READ_RULE}", inconclusive=None if abs(diff) > z * diff_se else C.WITHIN_NOISE),
        C.claim(gain_id, gain_text, m.gap_fc_lc > z * gain_se, gain,
                f"held if gap fc - lc > {z:g} se, refuted if below -{z:g} se, {READ_RULE}: without it, the first "
                f"claim can hold with no gain from locality at all",
                inconclusive=None if abs(m.gap_fc_lc) > z * gain_se else C.WITHIN_NOISE),
    ]


# --- figure and build ---------------------------------------------------------------------------

def _spaced(values: list, factor: float = 1.15) -> list:
    """Grid W to label: each at least ``factor`` above the last one kept (labels of W a few
    percent apart overprint)."""
    kept = []
    for v in values:
        if not kept or v >= factor * kept[-1]:
            kept.append(v)
    return kept


def _draw(final: pd.DataFrame, points: pd.DataFrame, m: Matched | None):
    def draw(caption, png, pdf):
        fig, axes = plots.panels(1, 6.4, 4.4)
        ax = axes[0]
        frame = final.assign(family=final["model"].map({v: LABEL[k] for k, v in FAMILY.items()}))
        order = [LABEL[r] for r in FAMILY if FAMILY[r] in set(final["model"])]
        sns.lineplot(data=frame, x="n_params", y="test_err", hue="family", hue_order=order, style="family",
                     style_order=order, markers=True, dashes=False, errorbar="sd", ax=ax)
        if m is not None:
            ax.axvspan(m.lo, m.hi, color="grey", alpha=0.12,
                       label=f"overlap: gaps fc - lc {m.gap_fc_lc:+.3f}, lc - conv {m.gap_lc_conv:+.3f}")
        ax.set_xscale("log")
        plots.log_ticks(ax, _spaced(sorted(points["n_params"].unique())))
        ax.set_xlabel("number of parameters W (log scale)")
        ax.set_ylabel("test error")
        ax.legend(fontsize=7)
        plots.save(fig, caption, png, pdf)
    return draw


def _setup(final: pd.DataFrame, points: pd.DataFrame, cfg: dict) -> str:
    widths = "; ".join(f"{f} widths {', '.join(str(int(w)) for w in sorted(g['width'].unique()))}"
                       for f, g in points.groupby("family"))
    return (f"{widths} ({_ranges(points)}); N = {', '.join(f'{n:,}' for n in sorted(final['N'].unique()))}; "
            f"{final['seed'].nunique()} seed(s); stop {cfg.get('stop', 'zero')}; "
            f"{int(final['interpolated'].sum())}/{len(final)} runs at train error 0")


def settled(final: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The final rows without diverged runs (a non-finite loss stopped them: their error says
    nothing about the family at that W), and a note naming those left out."""
    diverged = C.diverged(final)
    note = "" if not diverged.any() else ("; left out as diverged: "
                                          + ", ".join(f"{m} width {w}" for m, w in
                                                      zip(final.loc[diverged, "model"], final.loc[diverged, "width"])))
    return final[~diverged].reset_index(drop=True), note


def build(inp: Inputs) -> Outcome:
    final, note = settled(C.final_rows(inp.runs))
    points = by_family(final)
    m = matched(points)
    return Outcome(points, claims_of(points, int(final["n_test"].min()), inp.tol), _draw(final, points, m), _setup(final, points, inp.cfg) + note,
                   extra={"overlap": None if m is None else [m.lo, m.hi],
                          "mean_test_err": None if m is None else m.mean})
