"""Data-set targets read from whole training curves: error over epochs for each N and a
small and a larger model (memo073 Figs 13, 14), generalization error against W after a
fixed budget (memo073 Fig 15), and SGD against SGDL (memo073 Fig 6, eq. 5).

Each build reads every metrics row of its runs: the evaluated epochs for the curves, the
final row (``final``) for the claims.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns

from .. import claims as C
from .. import plots
from ..spec import parse_run_id
from . import Inputs, Outcome


def _final(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["final"].astype(bool)].reset_index(drop=True)


def _interpolated(final: pd.DataFrame) -> str:
    """How many runs ended at train error exactly 0, by N."""
    by_n = final.groupby("N")["interpolated"].agg(["sum", "count"])
    return (f"{int(by_n['sum'].sum())}/{int(by_n['count'].sum())} runs interpolated ("
            + ", ".join(f"N={n}: {int(r['sum'])}/{int(r['count'])}" for n, r in by_n.iterrows()) + ")")


def _long_errors(runs: pd.DataFrame, keys: list[str], cols=("train_err", "test_err")) -> pd.DataFrame:
    """One row per evaluated epoch and curve (train or test) for seaborn."""
    long = runs.melt(id_vars=keys + ["epoch"], value_vars=list(cols), var_name="curve", value_name="value")
    long["curve"] = long["curve"].str.split("_").str[0]
    return long


def _by_n_colours(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """N as a labelled category, one colour per grid N in increasing order, so the legend
    names every N of the grid."""
    ns = sorted(frame["N"].unique())
    labels = {n: f"N = {n:,}" for n in ns}
    colours = dict(zip(labels.values(), sns.color_palette("viridis", len(ns))))
    return frame.assign(N=frame["N"].map(labels)), colours


# --- t3-curves-by-n: memo073 Figs 13, 14 -------------------------------------------------

# The two models of Figs 13 and 14, the smallest and the largest width of the grid, each
# with its claim ids written out.
CURVES_BY_N_CLAIMS = {
    "small": ("t3-curves-by-n:small-model/train-zero-at-smallest-N",
              "t3-curves-by-n:small-model/gap-large-at-smallest-N",
              "t3-curves-by-n:small-model/gap-shrinks-with-N"),
    "larger": ("t3-curves-by-n:larger-model/train-zero-at-smallest-N",
               "t3-curves-by-n:larger-model/gap-large-at-smallest-N",
               "t3-curves-by-n:larger-model/gap-shrinks-with-N"),
}


def _gap_large(cid: str, text: str, final: pd.DataFrame, n_min: int, tol) -> dict:
    at = final[final["N"] == n_min]
    gap = float((at["test_err"] - at["train_err"]).mean())
    return C.claim(cid, text, gap >= tol.gap_at_smallest_n,
                   f"gap {gap:.3f} (test {at['test_err'].mean():.3f} - train {at['train_err'].mean():.3f}) at "
                   f"N = {n_min} over {len(at)} run(s); {_interpolated(at)}",
                   f"fails if the mean gap at the smallest N is below {tol.gap_at_smallest_n}")


def _model_claims(role: str, final: pd.DataFrame, tol) -> list[dict]:
    zero_id, gap_id, shrink_id = CURVES_BY_N_CLAIMS[role]
    texts = (f"{role} model: train error near 0 at the smallest N",
             f"{role} model: large test-train gap at the smallest N (overfitting with small training sets)",
             f"{role} model: the final test-train gap shrinks as N grows")
    if final.empty:
        return [C.claim(cid, text, False, f"no {role} model in the grid (one width only)",
                        "not testable on this grid: needs two widths")
                for cid, text in zip(CURVES_BY_N_CLAIMS[role], texts)]
    n_min = int(final["N"].min())
    if final["N"].nunique() < 2:
        shrink = C.claim(shrink_id, texts[2], False, f"one N only ({n_min}); {_interpolated(final)}",
                         "not testable on this grid: needs two N")
    else:
        shrink = C.falls_with(shrink_id, texts[2], C.by_point(final, "N"), "N", "gap", tol)
        shrink["measured"] += f"; {_interpolated(final)}"
    return [C.train_near_zero(zero_id, texts[0], final, final["N"] == n_min, f"N = {n_min}", tol),
            _gap_large(gap_id, texts[1], final, n_min, tol),
            shrink]


def curves_by_n(inp: Inputs) -> Outcome:
    runs = inp.runs
    final = _final(runs)
    widths = sorted(final["width"].unique())
    small, larger = widths[0], widths[-1]
    claims = (_model_claims("small", final[final["width"] == small], inp.tol)
              + _model_claims("larger", final[final["width"] == larger] if larger != small else final.iloc[:0],
                              inp.tol))
    table = pd.concat([C.by_point(final[final["width"] == w], "N").assign(width=w) for w in widths],
                      ignore_index=True)
    table.insert(0, "width", table.pop("width"))
    W = final.groupby("width")["n_params"].first()
    roles = {larger: "larger", small: "small"}  # one width only: it is the small model

    def draw(caption, png, pdf):
        fig, axes = plots.panels(len(widths), 4.8, 3.8)
        for ax, w in zip(axes, widths):
            long, colours = _by_n_colours(_long_errors(runs[runs["width"] == w], ["N"]))
            sns.lineplot(data=long, x="epoch", y="value", hue="N", style="curve", errorbar="sd", ax=ax,
                         palette=colours, hue_order=list(colours), style_order=["train", "test"])
            ax.set_xlabel("epoch")
            ax.set_ylabel("classification error")
            ax.set_ylim(-0.02, 1.0)
            ax.set_title(f"{roles.get(w, 'width')} model: width {w}, W = {W[w]:,}", fontsize=8)
            ax.legend(fontsize=6, ncol=2)
        plots.save(fig, caption, png, pdf)
    return Outcome(table, claims, draw,
                   f"model {final['model'].iloc[0]}; " + ", ".join(f"width {w}: W = {W[w]:,}" for w in widths)
                   + f"; N = {', '.join(f'{n:,}' for n in sorted(final['N'].unique()))}; "
                   f"{final['seed'].nunique()} seed(s); stop {inp.cfg.get('stop', 'zero')}")


# --- t3-gen-vs-w: memo073 Fig 15 ---------------------------------------------------------

def _worst_rise(points: pd.DataFrame) -> tuple[float, int, int]:
    """The largest rise of the gap as W grows, between successive W or from the first W
    (what trend 'flat_or_falls' bounds), with the W it goes from and to."""
    w, gap = points["n_params"].to_numpy(), points["gap"].to_numpy()
    steps = [(gap[i + 1] - gap[i], w[i], w[i + 1]) for i in range(len(gap) - 1)]
    overall = [(gap[i] - gap[0], w[0], w[i]) for i in range(1, len(gap))]
    return max(steps + overall, key=lambda r: r[0])


def _whole_grid(points: pd.DataFrame, N: int) -> pd.DataFrame:
    return points


def _past_n(points: pd.DataFrame, N: int) -> pd.DataFrame:
    """The grid points with W >= N and the last one below N, the reference a rise past N is
    measured from (as claims.beyond_threshold reads it)."""
    above = points[points["n_params"] >= N]
    return pd.concat([points[points["n_params"] < N].tail(1), above]) if len(above) else above


def _gap_no_rise(cid: str, text: str, final: pd.DataFrame, select, where: str, tol) -> dict:
    """Per N, the gap over the W that ``select`` keeps must be flat or fall (trend
    'flat_or_falls'); held only if it holds at every N of the grid."""
    per_n, held, worst = [], [], None
    for n, at in final.groupby("N"):
        pts = select(C.by_point(at, "n_params"), n)
        if len(pts) < 2:
            per_n.append(f"N={n}: fewer than two W {where}, not testable")
            held.append(False)
            continue
        t = C.tolerance(pts, "gap", tol.step, tol.spread_k)
        ok, _ = C.trend(pts["n_params"], pts["gap"], t, "flat_or_falls")
        held.append(ok)
        per_n.append(f"N={n} ({'held' if ok else 'NOT held'}, tolerance {t:.3f}): "
                     + ", ".join(f"W={w}: {g:.3f}" for w, g in zip(pts["n_params"], pts["gap"])))
        rise, w0, w1 = _worst_rise(pts)
        if worst is None or rise > worst[0]:
            train = pts.set_index("n_params")["train_err"]
            worst = (rise, n, w0, w1, train[w0], train[w1])
    if worst is None:
        return C.claim(cid, text, False, "; ".join(per_n), f"not testable on this grid: needs two W {where}")
    rise, n, w0, w1, tr0, tr1 = worst
    return C.claim(cid, text, all(held),
                   f"worst rise of the gap {rise:+.3f} at N = {n}, from W = {w0:,} to W = {w1:,} (train err {tr0:.3f} "
                   f"-> {tr1:.3f}); gap by W: " + "; ".join(per_n),
                   f"flat_or_falls over W {where} at every N: fails if at some N the gap rises between successive W, or "
                   f"above its value at the first W, by more than max({tol.step}, {tol.spread_k} x seed sd), or if "
                   f"some N has fewer than two such W")


def _gen_vs_w_claims(final: pd.DataFrame, tol) -> list[dict]:
    return [
        _gap_no_rise("t3-gen-vs-w:gap-no-rise-with-W",
                     "increasing the number of parameters does not increase the generalization error (at every N)",
                     final, _whole_grid, "in the grid", tol),
        _gap_no_rise("t3-gen-vs-w:gap-no-rise-past-N",
                     "the generalization error is not affected by increasing W beyond the training-set size N "
                     "(at every N)", final, _past_n, "from the last W < N on", tol),
    ]


def gen_vs_w(inp: Inputs) -> Outcome:
    final = _final(inp.runs).assign(gap=lambda f: f["test_err"] - f["train_err"])
    table = pd.concat([C.by_point(at, "n_params").assign(N=n) for n, at in final.groupby("N")], ignore_index=True)
    table.insert(0, "N", table.pop("N"))
    table.insert(1, "width", final.groupby("n_params")["width"].first().reindex(table["n_params"]).values)
    epochs = sorted(final["epoch"].unique())

    def draw(caption, png, pdf):
        fig, axes = plots.panels(1, 5.6, 4.0)
        ax = axes[0]
        points, colours = _by_n_colours(final)
        sns.lineplot(data=points, x="n_params", y="gap", hue="N", marker="o", errorbar="sd", ax=ax,
                     palette=colours, hue_order=list(colours))
        ax.set_xscale("log")
        plots.log_ticks(ax, sorted(final["n_params"].unique()))
        ax.set_xlabel("number of weights W (log scale)")
        ax.set_ylabel("generalization error (test - train error)")
        ax.axhline(0, color="grey", lw=0.8)
        ax.legend(fontsize=7)
        plots.save(fig, caption, png, pdf)
    return Outcome(table, _gen_vs_w_claims(final, inp.tol), draw,
                   f"model {final['model'].iloc[0]}; widths {', '.join(map(str, sorted(final['width'].unique())))} "
                   f"(W = {final['n_params'].min():,} to {final['n_params'].max():,}); N = "
                   f"{', '.join(f'{n:,}' for n in sorted(final['N'].unique()))}; {final['seed'].nunique()} seed(s); "
                   f"stop {inp.cfg.get('stop', 'zero')}, final epoch(s) {', '.join(map(str, epochs))}")


# --- t3-sgdl: memo073 Fig 6, eq. 5 -------------------------------------------------------

# What pairs an SGDL run with its SGD run: every coordinate of the run id but the noise.
PAIR_KEYS = ["dataset", "model", "width", "N", "labels", "init_scale", "seed", "stop", "subset_seed"]
SGDL_CLAIMS = ("t3-sgdl:final-test-tracks-sgd", "t3-sgdl:test-curve-tracks-sgd", "t3-sgdl:sgdl-better-validation")
SGDL_TEXTS = ("SGDL tracks SGD: final test error within a tolerance of SGD's",
              "SGDL tracks SGD: test-error curve within a tolerance of SGD's at every shared evaluation",
              "SGDL has slightly better validation performance than SGD (final test error <= SGD's)")


def _with_noise(runs: pd.DataFrame) -> pd.DataFrame:
    """The run id's coordinates as columns: ``noise`` (0 for SGD) and the pairing keys."""
    ids = pd.DataFrame([parse_run_id(r) for r in runs["run_id"]], index=runs.index)
    ids["subset_seed"] = ids["subset_seed"].fillna(-1).astype(int)
    return runs.drop(columns=[c for c in ids.columns if c in runs.columns]).join(ids)


def _paired(runs: pd.DataFrame) -> pd.DataFrame:
    """Rows of the runs whose SGD twin (noise 0, everything else equal) is in the grid, and
    that twin's rows."""
    has_sgd = runs[runs["noise"] == 0][PAIR_KEYS].drop_duplicates()
    has_sgdl = runs[runs["noise"] > 0][PAIR_KEYS].drop_duplicates()
    both = has_sgd.merge(has_sgdl)
    return runs.merge(both, on=PAIR_KEYS)


def _curve_gap(runs: pd.DataFrame, noise: float, start: float) -> tuple[float, int, list[int]]:
    """Largest |test error SGDL - SGD| (means over seeds) over the epochs both evaluated at
    or after ``start``: (difference, its epoch, the epochs compared)."""
    mean = runs.groupby(["noise", "epoch"])["test_err"].mean()
    sgd, sgdl = mean.loc[0.0], mean.loc[noise]
    shared = sorted(e for e in set(sgd.index) & set(sgdl.index) if e >= start)
    if not shared:
        return float("nan"), -1, []
    diff = (sgdl[shared] - sgd[shared]).abs()
    return float(diff.max()), int(diff.idxmax()), shared


def _sgdl_claims(runs: pd.DataFrame, final: pd.DataFrame, tol) -> list[dict]:
    levels = sorted(final.loc[final["noise"] > 0, "noise"].unique())
    if final.empty or not levels:
        return [C.claim(cid, text, False, "no SGD (noise 0) run paired with an SGDL (noise > 0) run",
                        "not testable on this grid: needs noise 0 and noise > 0, everything else equal")
                for cid, text in zip(SGDL_CLAIMS, SGDL_TEXTS)]
    sgd = final[final["noise"] == 0].set_index(PAIR_KEYS)
    finals, curves, better = [], [], []
    start = tol.sgdl_curve_from * float(final["epoch"].max())
    for s in levels:
        noisy = final[final["noise"] == s].set_index(PAIR_KEYS)
        d = (noisy["test_err"] - sgd["test_err"].reindex(noisy.index)).dropna()
        t = max(tol.sgdl_final_tol, tol.spread_k * (float(d.std()) if len(d) > 1 else 0.0))
        finals.append((s, float(d.mean()), t, float(noisy["train_err"].mean()) - float(sgd["train_err"].mean())))
        curves.append((s, *_curve_gap(runs, s, start)))
        better.append((s, float(d.mean())))
    base = f"SGD final test err {sgd['test_err'].mean():.3f}, train err {sgd['train_err'].mean():.3f}"
    curve_ok = [not np.isnan(m) and m <= tol.sgdl_curve_tol for _, m, _, _ in curves]
    return [
        C.claim(SGDL_CLAIMS[0], SGDL_TEXTS[0], all(abs(d) <= t for _, d, t, _ in finals),
                f"{base}; " + "; ".join(f"SGDL sd {s:g}: test err - SGD {d:+.3f} (tolerance {t:.3f}), train err - SGD "
                                        f"{dt:+.3f}" for s, d, t, dt in finals),
                f"fails if |SGDL - SGD| final test error exceeds max({tol.sgdl_final_tol}, {tol.spread_k} x sd of the "
                f"paired differences) at any noise level"),
        C.claim(SGDL_CLAIMS[1], SGDL_TEXTS[1], all(curve_ok),
                "; ".join(f"SGDL sd {s:g}: max |test err - SGD| {m:.3f} at epoch {e} over the shared epochs "
                          f"{', '.join(map(str, ep)) or 'none'}" for s, m, e, ep in curves),
                f"fails if the difference of the mean test-error curves exceeds {tol.sgdl_curve_tol} at any shared "
                f"evaluated epoch >= {tol.sgdl_curve_from:g} x the last epoch = {start:g} (earlier epochs left out), "
                f"or if there is none"),
        C.claim(SGDL_CLAIMS[2], SGDL_TEXTS[2], all(d <= 0 for _, d in better),
                f"{base}; " + "; ".join(f"SGDL sd {s:g}: test err - SGD {d:+.3f}" for s, d in better),
                "fails if SGDL's mean final test error is above SGD's at any noise level (no tolerance: the memo "
                "reports a direction)"),
    ]


def _sgdl_table(final: pd.DataFrame) -> pd.DataFrame:
    cols = ["train_err", "test_err", "train_loss", "test_loss"]
    table = final.groupby("noise").agg(runs=("run_id", "count"), epochs=("epoch", "mean"),
                                       **{c: (c, "mean") for c in cols}).reset_index()
    table.insert(0, "optimizer", np.where(table["noise"] > 0, "SGDL", "SGD"))
    sgd = table[table["noise"] == 0]
    for c in ("train_err", "test_err"):
        table[f"{c}_minus_sgd"] = table[c] - (float(sgd[c].iloc[0]) if len(sgd) else np.nan)
    return table


def _label(noise: float) -> str:
    return "SGD" if noise == 0 else f"SGDL (sd {noise:g})"


def sgdl(inp: Inputs) -> Outcome:
    runs = _with_noise(inp.runs)
    pairs = _paired(runs)
    final, paired_final = _final(runs), _final(pairs)
    runs = runs.assign(optimizer=runs["noise"].map(_label))

    def draw(caption, png, pdf):
        fig, axes = plots.panels(2, 4.8, 3.8)
        for ax, (cols, ylabel) in zip(axes, [(("train_err", "test_err"), "classification error"),
                                             (("train_loss", "test_loss"), "cross-entropy loss (nats)")]):
            long = _long_errors(runs, ["optimizer"], cols)
            sns.lineplot(data=long, x="epoch", y="value", hue="optimizer", style="curve", errorbar="sd", ax=ax,
                         style_order=["train", "test"])
            ax.set_xlabel("epoch")
            ax.set_ylabel(ylabel)
            ax.legend(fontsize=7)
        axes[0].set_ylim(-0.02, 1.0)
        plots.save(fig, caption, png, pdf)
    W = int(final["n_params"].iloc[0])
    return Outcome(_sgdl_table(final), _sgdl_claims(pairs, paired_final, inp.tol), draw,
                   f"model {final['model'].iloc[0]}, width {final['width'].iloc[0]} (W = {W:,}); N = "
                   f"{int(final['N'].iloc[0]):,}; noise sd per weight and update "
                   f"{', '.join(f'{s:g}' for s in sorted(final['noise'].unique()))}; {final['seed'].nunique()} "
                   f"seed(s); stop {inp.cfg.get('stop', 'zero')}")


BUILD = {
    "t3-curves-by-n": curves_by_n,
    "t3-gen-vs-w": gen_vs_w,
    "t3-sgdl": sgdl,
}
