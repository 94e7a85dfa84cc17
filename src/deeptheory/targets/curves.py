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
from . import Inputs, Outcome, Target

# The registry's entries (deeptheory.targets): plain literals, read without importing this module.
TARGETS = [
    Target(
        id="t3-curves-by-n",
        source="memo073 Figs 13, 14",
        what="train and test error over epochs, one curve per N, a small and a larger model",
        claims="small N: train error 0 with a large test gap; the gap shrinks as N grows (for each model)",
        builder="curves_by_n",
        sweep="grid",
    ),
    Target(
        id="t3-gen-vs-w",
        source="memo073 Fig 15",
        what="generalization error (test - train) vs number of weights, one curve per N, 30 epochs",
        claims="increasing the number of parameters does not increase the generalization error (at every N)",
        caption="generalization error (test minus train error) vs number of weights W, one curve per N, every net "
                "trained 30 epochs",
        builder="gen_vs_w",
        sweep="grid",
    ),
    Target(
        id="t3-sgdl",
        source="memo073 Fig 6, eq. 5",
        what="SGD vs SGDL (SGD plus Gaussian noise of constant power): training and validation curves",
        claims="SGDL tracks SGD; final validation errors side by side",
        caption="SGD vs SGDL (SGD plus isotropic Gaussian noise of constant power after each update): training and "
                "validation curves",
        builder="sgdl",
        sweep="grid",
    ),
]


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
    point = C.by_point(at, "N").iloc[0]
    gap, se = float(point["gap"]), float(point["gap_se"])
    held, why = C.versus(gap, se, tol.gap_at_smallest_n, tol.noise_z, below=False)
    return C.claim(cid, text, held,
                   f"gap {gap:.3f} +- {se:.3f} (test {at['test_err'].mean():.3f} - train {at['train_err'].mean():.3f}) "
                   f"at N = {n_min} over {len(at)} run(s); {_interpolated(at)}",
                   f"held if the mean gap at the smallest N is above {tol.gap_at_smallest_n} by {tol.noise_z:g} se, "
                   f"refuted if below by as much", inconclusive=why)


def _model_claims(role: str, final: pd.DataFrame, tol) -> list[dict]:
    zero_id, gap_id, shrink_id = CURVES_BY_N_CLAIMS[role]
    texts = (f"{role} model: train error near 0 at the smallest N",
             f"{role} model: large test-train gap at the smallest N (overfitting with small training sets)",
             f"{role} model: the final test-train gap shrinks as N grows")
    if final.empty:
        return [C.untestable(cid, text, f"no {role} model in the grid (one width only)", "needs two widths")
                for cid, text in zip(CURVES_BY_N_CLAIMS[role], texts)]
    n_min = int(final["N"].min())
    settled = final[~C.diverged(final)]  # the fit check reads a diverged run by its status; the errors do not
    if settled["N"].nunique() < 2:
        shrink = C.untestable(shrink_id, texts[2], f"{settled['N'].nunique()} N with a finite loss; "
                              f"{_interpolated(final)}", "needs two N")
    else:
        shrink = C.falls_with(shrink_id, texts[2], C.by_point(settled, "N"), "N", "gap", tol)
        shrink["measured"] += f"; {_interpolated(final)}"
    gap = (_gap_large(gap_id, texts[1], settled, n_min, tol) if (settled["N"] == n_min).any() else
           C.untestable(gap_id, texts[1], f"every run at N = {n_min} diverged", "needs a finite run", reason=C.DIVERGED))
    return [C.train_near_zero(zero_id, texts[0], final, final["N"] == n_min, f"N = {n_min}", tol), gap, shrink]


LARGER_NO_WORSE = ("t3-curves-by-n:larger-model-test-no-worse",
                   "the larger model's final test error is no worse than the small model's at every N (Fig 14 "
                   "against Fig 13)")


def _larger_no_worse(small: pd.DataFrame, larger: pd.DataFrame, tol) -> dict:
    """At every N both models trained: the larger's test error minus the small one's,
    refuted if above claims.step beyond noise_z standard errors at one N, held if at every
    N it + z se stays within claims.step, else within noise."""
    cid, text = LARGER_NO_WORSE
    if larger.empty:
        return C.untestable(cid, text, "no larger model in the grid", "needs two widths at a shared N")
    _, _, ns, d, se = C.point_difference(small, larger, "N")
    if not ns:
        return C.untestable(cid, text, "no N with both models", "needs two widths at a shared N")
    z, step = tol.noise_z, tol.step
    refuted, held = bool((d - z * se > step).any()), bool((d + z * se <= step).all())
    return C.claim(cid, text, held, "larger - small final test error by N: "
                   + ", ".join(f"{n:,}: {v:+.3f} +- {e:.3f}" for n, v, e in zip(ns, d, se)),
                   f"refuted if at one N the larger model is worse by more than {step} beyond {z:g} se; held if at "
                   f"every N the difference + {z:g} se stays within {step}",
                   inconclusive=None if held or refuted else C.WITHIN_NOISE)


def curves_by_n(inp: Inputs) -> Outcome:
    runs = inp.runs
    final = C.final_rows(runs)
    widths = sorted(final["width"].unique())
    small, larger = widths[0], widths[-1]
    larger_final = final[final["width"] == larger] if larger != small else final.iloc[:0]
    claims = (_model_claims("small", final[final["width"] == small], inp.tol)
              + _model_claims("larger", larger_final, inp.tol)
              + [_larger_no_worse(final[final["width"] == small], larger_final, inp.tol)])
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

def _worst_rise(points: pd.DataFrame, col: str) -> tuple[float, int, int]:
    """The largest rise of ``col`` as W grows, between successive W or from the first W
    (what trend 'flat_or_falls' bounds), with the W it goes from and to."""
    w, gap = points["n_params"].to_numpy(), points[col].to_numpy()
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


def _no_rise(cid: str, text: str, final: pd.DataFrame, select, where: str, tol, col: str = "gap") -> dict:
    """Per N, ``col`` (the gap, or the test error) over the W that ``select`` keeps must not
    rise (claims.noise_trend 'flat_or_falls'): refuted if it rises beyond noise at some N,
    held if at every N every rise is bounded below claims.step, else inconclusive."""
    per_n, verdicts, worst = [], [], None
    for n, at in final.groupby("N"):
        pts = select(C.by_point(at, "n_params"), n)
        if len(pts) < 2:
            per_n.append(f"N={n}: fewer than two W {where}")
            verdicts.append((False, C.UNTESTABLE))
            continue
        ok, why, decided = C.noise_trend(pts[col], pts[f"{col}_se"], tol.noise_z, "flat_or_falls", tol.step)
        verdicts.append((ok, why))
        per_n.append(f"N={n} ({why or ('held' if ok else 'refuted')}; {decided}): "
                     + ", ".join(f"W={w}: {g:.3f}" for w, g in zip(pts["n_params"], pts[col])))
        rise, w0, w1 = _worst_rise(pts, col)
        if worst is None or rise > worst[0]:
            train = pts.set_index("n_params")["train_err"]
            worst = (rise, n, w0, w1, train[w0], train[w1])
    if worst is None:
        return C.untestable(cid, text, "; ".join(per_n), f"needs two W {where}")
    rise, n, w0, w1, tr0, tr1 = worst
    refuted = any(not ok and why is None for ok, why in verdicts)
    reasons = [why for ok, why in verdicts if why]
    name = "the gap" if col == "gap" else "the test error"
    return C.claim(cid, text, all(ok for ok, _ in verdicts),
                   f"worst rise of {name} {rise:+.3f} at N = {n}, from W = {w0:,} to W = {w1:,} (train err {tr0:.3f} "
                   f"-> {tr1:.3f}); {col} by W: " + "; ".join(per_n),
                   f"flat_or_falls over W {where} at every N, read against {tol.noise_z:g} standard errors: refuted "
                   f"if at some N {name} rises beyond {tol.step} by them, held if at every N every rise is bounded "
                   f"below {tol.step}", inconclusive=None if refuted or not reasons else reasons[0])


def _gen_vs_w_claims(final: pd.DataFrame, tol, dead: str) -> list[dict]:
    rows = [
        _no_rise("t3-gen-vs-w:gap-no-rise-with-W",
                 "increasing the number of parameters does not increase the generalization error (at every N)",
                 final, _whole_grid, "in the grid", tol),
        _no_rise("t3-gen-vs-w:gap-no-rise-past-N",
                 "the generalization error is not affected by increasing W beyond the training-set size N "
                 "(at every N)", final, _past_n, "from the last W < N on", tol),
        # Fig 15's caption: "increasing the number of parameters does not hurt generalization", read
        # on the test error itself too: a gap that stays flat while both errors rise would hurt.
        _no_rise("t3-gen-vs-w:test-no-rise-with-W",
                 "increasing the number of parameters does not increase the test error (at every N)",
                 final, _whole_grid, "in the grid", tol, col="test_err"),
    ]
    return [{**r, "detail": r["detail"] + dead} for r in rows]


def _dead_left_out(final: pd.DataFrame, tol) -> tuple[pd.DataFrame, str]:
    """The runs that trained, and a note naming the nets that did not (loss at ln(classes)
    throughout: their gap is that of a constant classifier, no point on a curve of W)."""
    dead = C.did_not_train(final, tol)
    note = "" if not dead.any() else ("; left out as not trained (loss ~ ln(classes) throughout): "
                                      + ", ".join(f"N={n} W={w:,}" for n, w in
                                                  zip(final.loc[dead, "N"], final.loc[dead, "n_params"])))
    return final[~dead].reset_index(drop=True), note


def gen_vs_w(inp: Inputs) -> Outcome:
    final, dead = _dead_left_out(C.final_rows(inp.runs).assign(gap=lambda f: f["test_err"] - f["train_err"]), inp.tol)
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
    return Outcome(table, _gen_vs_w_claims(final, inp.tol, dead), draw,
                   f"model {final['model'].iloc[0]}; widths {', '.join(map(str, sorted(final['width'].unique())))} "
                   f"(W = {final['n_params'].min():,} to {final['n_params'].max():,}); N = "
                   f"{', '.join(f'{n:,}' for n in sorted(final['N'].unique()))}; {final['seed'].nunique()} seed(s); "
                   f"stop {inp.cfg.get('stop', 'zero')}, final epoch(s) {', '.join(map(str, epochs))}")


# --- t3-sgdl: memo073 Fig 6, eq. 5 -------------------------------------------------------

# What pairs an SGDL run with its SGD run: every coordinate of the run id but the noise
# (metrics columns, as every run writes them: deeptheory.run.results.with_run_fields).
PAIR_KEYS = ["dataset", "model", "width", "N", "labels", "init_scale", "seed", "stop", "subset_seed"]
SGDL_CLAIMS = ("t3-sgdl:final-test-tracks-sgd", "t3-sgdl:test-curve-tracks-sgd", "t3-sgdl:sgdl-better-validation")
SGDL_TEXTS = ("SGDL tracks SGD: final test error within a tolerance of SGD's",
              "SGDL tracks SGD: test-error curve within a tolerance of SGD's at every shared evaluation",
              "SGDL has slightly better validation performance than SGD (final test error <= SGD's)")


def _with_noise(runs: pd.DataFrame) -> pd.DataFrame:
    """The rows with ``subset_seed`` a key that pairs: -1 for a run on its own seed's subset
    (``noise`` is 0 for SGD)."""
    return runs.assign(subset_seed=runs["subset_seed"].fillna(-1).astype(int))


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
    """Differences of test errors read against noise_z standard errors of the difference
    (binomial at n_test for each net, and the spread of the paired differences over seeds):
    "tracks" holds when |difference| + z se stays within its tolerance, and is refuted when
    |difference| - z se exceeds it; "better" holds on a fall beyond z se, is refuted by a
    rise beyond it."""
    levels = sorted(final.loc[final["noise"] > 0, "noise"].unique())
    if final.empty or not levels:
        return [C.untestable(cid, text, "no SGD (noise 0) run paired with an SGDL (noise > 0) run",
                             "needs noise 0 and noise > 0, everything else equal")
                for cid, text in zip(SGDL_CLAIMS, SGDL_TEXTS)]
    z = tol.noise_z
    sgd = final[final["noise"] == 0].set_index(PAIR_KEYS)
    n_test = int(final["n_test"].min())
    finals, curves = [], []
    start = tol.sgdl_curve_from * float(final["epoch"].max())
    for s in levels:
        noisy = final[final["noise"] == s].set_index(PAIR_KEYS)
        d = (noisy["test_err"] - sgd["test_err"].reindex(noisy.index)).dropna()
        se = float(np.hypot(C.binomial_se(noisy["test_err"].mean(), n_test), C.binomial_se(sgd["test_err"].mean(), n_test)))
        se = float(np.hypot(se, d.std() / np.sqrt(len(d)) if len(d) > 1 else 0.0))
        finals.append((s, float(d.mean()), se, float(noisy["train_err"].mean()) - float(sgd["train_err"].mean())))
        curves.append((s, *_curve_gap(runs, s, start)))
    base = f"SGD final test err {sgd['test_err'].mean():.3f}, train err {sgd['train_err'].mean():.3f}"

    def within(diffs_ses, bound):
        refuted = any(abs(d) - z * e > bound for d, e in diffs_ses)
        held = all(abs(d) + z * e <= bound for d, e in diffs_ses)
        return held, None if held or refuted else C.WITHIN_NOISE

    track, track_why = within([(d, e) for _, d, e, _ in finals], tol.sgdl_final_tol)
    if any(np.isnan(m) for _, m, _, _ in curves):
        curve, curve_why = False, C.UNTESTABLE
    else:  # one evaluation's difference: two error rates on the same n_test images
        e = np.sqrt(2) * float(C.binomial_se(sgd["test_err"].mean(), n_test))
        curve, curve_why = within([(m, e) for _, m, _, _ in curves], tol.sgdl_curve_tol)
    better_refuted = any(d > z * e for _, d, e, _ in finals)
    better = all(d < -z * e for _, d, e, _ in finals)
    return [
        C.claim(SGDL_CLAIMS[0], SGDL_TEXTS[0], track,
                f"{base}; " + "; ".join(f"SGDL sd {s:g}: test err - SGD {d:+.3f} +- {e:.3f}, train err - SGD {dt:+.3f}"
                                        for s, d, e, dt in finals),
                f"held if |SGDL - SGD| final test error + {z:g} se <= {tol.sgdl_final_tol} at every noise level, "
                f"refuted if |SGDL - SGD| - {z:g} se exceeds it at one", inconclusive=track_why),
        C.claim(SGDL_CLAIMS[1], SGDL_TEXTS[1], curve,
                "; ".join(f"SGDL sd {s:g}: max |test err - SGD| {m:.3f} at epoch {e} over the shared epochs "
                          f"{', '.join(map(str, ep)) or 'none'}" for s, m, e, ep in curves),
                f"the largest difference of the mean test-error curves at shared evaluated epochs >= "
                f"{tol.sgdl_curve_from:g} x the last epoch = {start:g}, against {tol.sgdl_curve_tol}: held if it + "
                f"{z:g} se (binomial at n_test) stays within, refuted if it - {z:g} se exceeds it", inconclusive=curve_why),
        C.claim(SGDL_CLAIMS[2], SGDL_TEXTS[2], better,
                f"{base}; " + "; ".join(f"SGDL sd {s:g}: test err - SGD {d:+.3f} +- {e:.3f}" for s, d, e, _ in finals),
                f"held if SGDL's final test error is below SGD's by {z:g} se at every noise level, refuted if above by "
                f"as much at one", inconclusive=None if better or better_refuted else C.WITHIN_NOISE),
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
    final, paired_final = C.final_rows(runs), C.final_rows(pairs)
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
