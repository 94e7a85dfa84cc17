"""Data-set targets that sweep one grid axis: error against N (memo073 Figs 1, 2) and
against W or neurons (memo073 Figs 3, 4; memo100 Fig 4).

Each build reads the final metrics row of every run of its grid, finds W (the fixed
width's weight count) or N (the fixed training-set size), and checks the memo's claim
where it bites: at N = W, or at W = N.
"""

from __future__ import annotations

import pandas as pd

from .. import claims as C
from .. import plots
from . import Inputs, Outcome, Target

# The registry's entries (deeptheory.targets): plain literals, read without importing this module.
TARGETS = [
    Target(
        id="t3-err-vs-n",
        source="memo073 Fig 1",
        what="train and test error vs N",
        claims="train error near 0 for N < W; test error falls as N grows; the test-train gap shrinks for N > W",
        builder="err_vs_n",
        sweep="N",
    ),
    Target(
        id="t3-err-vs-n-random",
        source="memo073 Fig 2",
        what="train and test error vs N, random labels",
        claims="test error at chance for every N; train error near 0 for N << W, rising toward chance for N > W",
        builder="err_vs_n_random",
        sweep="N",
    ),
    Target(
        id="t3-err-vs-n-past-zero",
        source="memo073 Fig 1; memo100 section 3 (training past the fit)",
        what="train and test error vs N, trained on past zero training error",
        claims="the same checks as t3-err-vs-n; whether any verdict changes is the result",
        caption="t3-err-vs-n with every run trained a fixed number of epochs past zero training error (config key "
                "``stop``, e.g. ``zero+50``), since memo100 says the margin keeps growing after the data are fit",
        builder="err_vs_n_past_zero",
        sweep="N",
    ),
    Target(
        id="t3-err-vs-w",
        source="memo073 Figs 3, 4",
        what="train and test error vs W at fixed N",
        claims="train error reaches 0 once W >= N; test error does not rise for W > N",
        builder="err_vs_w",
        sweep="width",
    ),
    Target(
        id="m100-err-vs-neurons",
        source="memo100 Fig 4",
        what="train and test error vs number of neurons",
        claims="test error does not rise past the size of the training set",
        builder="err_vs_neurons",
        sweep="width",
    ),
    Target(
        id="t3-poly",
        source="memo073 Figs 21-24",
        what="the 5-layer all-conv net with ReLU replaced by a degree-10 polynomial: error vs N (natural and random "
             "labels) and vs W",
        claims="the three puzzles of the ReLU net hold for the polynomial net, by the same checks as t3-err-vs-n, "
               "t3-err-vs-n-random and t3-err-vs-w",
        caption="the 5-layer all-convolutional net with every ReLU replaced by a degree-10 polynomial fit of ReLU "
                "(coefficients and fit interval in the table): train and test error vs N with natural and with "
                "random labels, and vs W at fixed N. Trained with the profile's SGD and the gradient-norm clip of "
                "recipe ``poly``; a run whose loss overflowed stops, is marked diverged, and is left out of the "
                '"does not fit" checks',
        builder="poly",
        sweep="grid",
    ),
]


def settled(final: pd.DataFrame) -> pd.DataFrame:
    """The runs whose end says something about the net: a diverged run's errors are those of
    overflowed weights, so no check reads them (the table counts them)."""
    return final[~C.diverged(final)].reset_index(drop=True)


def with_diverged_noted(claims: list[dict], final: pd.DataFrame) -> list[dict]:
    out = final[C.diverged(final)]
    if out.empty:
        return claims
    note = (f"; {len(out)} diverged run(s) left out (loss not finite): "
            + ", ".join(f"N={r.N} W={r.n_params}" + (f" {r.labels}" if "labels" in out else "")
                        for r in out.itertuples()))
    return [{**c, "detail": c["detail"] + note} for c in claims]


def _setup(final: pd.DataFrame, fixed: str) -> str:
    return (f"model {final['model'].iloc[0]}; {fixed}; {final['seed'].nunique()} seed(s), "
            f"final rows of {len(final)} runs")


def _with_fit_status(final: pd.DataFrame, pts: pd.DataFrame, x: str, tol) -> pd.DataFrame:
    """Per grid point: how many runs ended in each of claims.STATUSES."""
    status = C.fit_status(final, tol)
    counts = pd.crosstab(final[x], status).reindex(columns=list(C.STATUSES), fill_value=0)
    # outer: a grid point whose runs all diverged has no errors, but keeps its row and counts
    return pts.drop(columns=["interpolated"]).merge(
        counts.rename(columns=lambda c: c.replace(" ", "_")), left_on=x, right_index=True, how="outer")


def _n_sweep(inp: Inputs, claims_of, chance: float | None = None) -> Outcome:
    every = C.final_rows(inp.runs)
    final = settled(every)
    W = int(every["n_params"].iloc[0])
    pts = C.by_point(final, "N")
    table = _with_fit_status(every, pts, "N", inp.tol)
    table.insert(1, "N_over_W", table["N"] / W)

    def draw(caption, png, pdf):
        plots.error_sweep(final, "N", "training-set size N", caption, png, pdf, marker=W,
                          marker_label=f"N = W = {W:,}", chance=chance)
    # the fit checks read every run (a diverged one by its status); the error trends only the settled ones' points
    return Outcome(table, with_diverged_noted(claims_of(every, pts, W), every), draw,
                   _setup(every, f"W = {W:,} weights"))


def _width_sweep(inp: Inputs, claims_of, x: str, xlabel: str, marker_of) -> Outcome:
    every = C.final_rows(inp.runs)
    final = settled(every)
    N = int(every["N"].iloc[0])
    pts = C.by_point(final, "n_params")
    pts.insert(0, "width", every.groupby("n_params")["width"].first().reindex(pts["n_params"]).values)
    table = _with_fit_status(every, pts, "n_params", inp.tol)
    table.insert(2, "W_over_N", table["n_params"] / N)
    marker, marker_label = marker_of(final, N)

    def draw(caption, png, pdf):
        plots.error_sweep(final, x, xlabel, caption, png, pdf, marker=marker, marker_label=marker_label,
                          scales=("log", "linear") if x == "n_params" else ("log",))
    return Outcome(table, with_diverged_noted(claims_of(every, pts, N), every), draw, _setup(every, f"N = {N:,}"))


def _err_vs_n_claims(tol):
    def claims_of(final, pts, W):
        past = tol.past_w_factor * W
        return [
            C.train_near_zero("t3-err-vs-n:train-zero-below-W", "train error near 0 for N < W", final,
                              final["N"] < W, f"N < W = {W}", tol),
            C.does_not_fit("t3-err-vs-n:train-above-zero-from-2W", "train error above 0 well past W (N >= 2 W)",
                           final, final["N"] >= past, f"N >= {tol.past_w_factor:g} W = {past:.0f}", tol),
            C.falls_with("t3-err-vs-n:test-falls", "test error falls as N grows", pts, "N", "test_err", tol),
            C.gap_at_largest_n("t3-err-vs-n:gap-small-at-largest-N",
                               "generalization for N > W: test-train gap small at the largest N", pts, W, tol),
        ]
    return claims_of


def err_vs_n(inp: Inputs) -> Outcome:
    return _n_sweep(inp, _err_vs_n_claims(inp.tol))


def err_vs_n_past_zero(inp: Inputs) -> Outcome:
    """t3-err-vs-n with runs trained on past zero training error (memo100: the margin keeps
    growing after the data are fit): the same checks, under this target's ids."""
    base = _err_vs_n_claims(inp.tol)

    def claims_of(final, pts, W):
        return _renamed(base(final, pts, W), "t3-err-vs-n:", "t3-err-vs-n-past-zero:")
    outcome = _n_sweep(inp, claims_of)
    outcome.setup += f"; trained {inp.cfg.get('stop', 'zero')} (epochs past zero training error)"
    return outcome


def _err_vs_n_random_claims(tol):
    def claims_of(final, pts, W):
        num_classes = int(final["num_classes"].iloc[0])
        return [
            C.at_chance("t3-err-vs-n-random:test-at-chance", "test error at chance for every N", final,
                        num_classes, tol),
            C.first_unfit_near_w("t3-err-vs-n-random:first-unfit-N-near-W",
                                 "train error is 0 for N << W and first leaves 0 near W", final, W, tol),
            C.near_chance_at_largest_n("t3-err-vs-n-random:train-near-chance-at-largest-N",
                                       "train error rises toward chance for N > W", final, W, tol),
        ]
    return claims_of


def err_vs_n_random(inp: Inputs) -> Outcome:
    final = C.final_rows(inp.runs)
    return _n_sweep(inp, _err_vs_n_random_claims(inp.tol), chance=1 - 1 / int(final["num_classes"].iloc[0]))


def _first_w_past_n(final, N):
    return N, f"W = N = {N:,}"


def _err_vs_w_claims(tol):
    def claims_of(final, pts, N):
        return [
            C.fits_at_first_w_past_n("t3-err-vs-w:train-zero-at-first-W-past-N",
                                     "zero train error as soon as W = N", final, N, tol),
            C.train_near_zero("t3-err-vs-w:train-zero-above-N", "train error near 0 for every W >= N", final,
                              final["n_params"] >= N, f"W >= N = {N}", tol),
            C.beyond_threshold("t3-err-vs-w:test-no-rise-above-N", "test error does not rise for W > N", pts,
                               "n_params", "test_err", N, f"W >= N = {N}", "flat_or_falls", tol),
            C.optimum_near("t3-err-vs-w:test-optimal-near-N",
                           "the test error is optimal around the boundary between over- and under-parametrization "
                           "(W ~ N; memo073 section 5)", pts, "n_params", "test_err", N, "N", tol.optimum_w_factor,
                           tol),
        ]
    return claims_of


def err_vs_w(inp: Inputs) -> Outcome:
    return _width_sweep(inp, _err_vs_w_claims(inp.tol), "n_params", "number of weights W", _first_w_past_n)


def _renamed(rows: list[dict], old: str, new: str) -> list[dict]:
    return [{**c, "id": c["id"].replace(old, new, 1)} for c in rows]


def _part_claims(claims_of, final: pd.DataFrame, every: pd.DataFrame, x: str, ref, old: str, new: str) -> list[dict]:
    """One sweep's claims under t3-poly's ids; if every run of the sweep diverged, each of
    them is inconclusive (the diverged rows only name the claims)."""
    if final.empty:
        return [C.untestable(c["id"], c["claim"], f"all {len(every)} run(s) of this sweep diverged",
                             "needs runs whose loss stayed finite", reason=C.DIVERGED)
                for c in _renamed(claims_of(every, C.by_point(every, x), ref), old, new)]
    return with_diverged_noted(_renamed(claims_of(every, C.by_point(final, x), ref), old, new), every)


def poly(inp: Inputs) -> Outcome:
    """memo073 Figs 22-24: the polynomial net (ReLU replaced by its degree-10 fit) against the
    three puzzles, by the ReLU net's own checks: error vs N with natural labels (t3-err-vs-n)
    and with random labels (t3-err-vs-n-random) at the first width, error vs W at the N of
    the first of ``grids`` (t3-err-vs-w). Each claim reads ``t3-poly:<the ReLU claim's target>/<name>``.
    Runs that diverged are counted in the table and read by no check."""
    from ..models import POLY_INTERVAL, POLY_RELU

    tol, cfg, both = inp.tol, inp.cfg, C.final_rows(inp.runs)
    # Fig 21: the ReLU net of the same architecture and training (a grid of model allconv5), beside it
    relu, every = (both[both["model"] == m].reset_index(drop=True) for m in ("allconv5", "polyconv5"))
    width, N0, w_grid = cfg["widths"][0], cfg["grids"][0]["N"][0], cfg["grids"][0]["widths"]
    sweeps = {"natural": (every["width"] == width) & (every["labels"] == "natural"),
              "random": (every["width"] == width) & (every["labels"] == "random"),
              "width": (every["N"] == N0) & (every["labels"] == "natural") & every["width"].isin(w_grid)}
    rows = {k: every[sel].reset_index(drop=True) for k, sel in sweeps.items()}
    natural, random, by_w = (settled(rows[k]) for k in ("natural", "random", "width"))
    rows["relu"] = relu[(relu["width"] == width) & (relu["labels"] == "natural")].reset_index(drop=True)
    W = int(every.loc[every["width"] == width, "n_params"].iloc[0])
    chance = 1 - 1 / int(every["num_classes"].iloc[0])
    claims = (_part_claims(_err_vs_n_claims(tol), natural, rows["natural"], "N", W, "t3-err-vs-n:", "t3-poly:err-vs-n/")
              + _part_claims(_err_vs_n_random_claims(tol), random, rows["random"], "N", W, "t3-err-vs-n-random:",
                             "t3-poly:err-vs-n-random/")
              + _part_claims(_err_vs_w_claims(tol), by_w, rows["width"], "n_params", N0, "t3-err-vs-w:",
                             "t3-poly:err-vs-w/")
              + [like_relu(natural, settled(rows["relu"]), tol)])
    x_of = {"natural": "N", "random": "N", "width": "n_params", "relu": "N"}
    table = pd.concat([_with_fit_status(rows[k], C.by_point(settled(rows[k]), x_of[k]), x_of[k], tol)
                       .assign(sweep=k, labels="random" if k == "random" else "natural") for k in rows if len(rows[k])],
                      ignore_index=True)
    table["poly_interval"] = POLY_INTERVAL
    table["poly_coefficients"] = " ".join(f"{c:.6g}" for c in POLY_RELU)

    def draw(caption, png, pdf):
        fig, axes = plots.panels(3, 4.4, 3.6)
        plots.sweep_panel(axes[0], natural, "N", "training-set size N", marker=W, marker_label=f"N = W = {W:,}",
                          title="natural labels (dotted: the ReLU net)")
        relu_nat = rows["relu"].sort_values("N")
        for col, colour in (("train_err", "tab:blue"), ("test_err", "tab:red")):
            axes[0].plot(relu_nat["N"], relu_nat[col], ls=":", marker="x", color=colour, label=f"ReLU {col[:-4]}")
        axes[0].legend(fontsize=7)
        plots.sweep_panel(axes[1], random, "N", "training-set size N", marker=W, marker_label=f"N = W = {W:,}",
                          chance=chance, title="random labels")
        plots.sweep_panel(axes[2], by_w, "n_params", "number of weights W", marker=N0,
                          marker_label=f"W = N = {N0:,}", title=f"N = {N0:,}, natural labels")
        plots.save(fig, caption, png, pdf)
    return Outcome(table, claims, draw,
                   f"model polyconv5 (allconv5, ReLU -> degree-{len(POLY_RELU) - 1} fit on [-{POLY_INTERVAL:g}, "
                   f"{POLY_INTERVAL:g}]); W = {W:,} at width {width} for the N sweeps, N = {N0:,} for the W sweep")


LIKE_RELU = ("t3-poly:like-relu", "the polynomial net performs like the ReLU net of the same architecture and "
             "training: train and test error alike at every N (Fig 21)")


def like_relu(poly_runs: pd.DataFrame, relu_runs: pd.DataFrame, tol) -> dict:
    """memo073 Fig 21, "polynomial and ReLU networks with the same architecture have very
    similar performance in terms of training and testing error": at every N both trained,
    |test error difference| + noise_z se within poly_relu_tol and the (exact) train errors
    within it holds; a difference beyond it (the test one by noise_z se) refutes."""
    cid, text = LIKE_RELU
    if poly_runs.empty or relu_runs.empty:
        return C.untestable(cid, text, f"{len(poly_runs)} polynomial and {len(relu_runs)} ReLU run(s)",
                            "needs the ReLU net at the polynomial net's N (a grid of model allconv5)")
    a, b, ns, d, se = C.point_difference(poly_runs, relu_runs, "N")  # a: polynomial, b: ReLU
    if not ns:
        return C.untestable(cid, text, f"{len(a)} polynomial and {len(b)} ReLU grid point(s), none shared",
                            "needs the ReLU net at the polynomial net's N (a grid of model allconv5)")
    t, z = tol.poly_relu_tol, tol.noise_z
    d_test = d.abs()
    d_train = (b.loc[ns, "train_err"] - a.loc[ns, "train_err"]).abs()
    refuted = bool(((d_test - z * se) > t).any() or (d_train > t).any())
    held = bool(((d_test + z * se) <= t).all() and (d_train <= t).all())
    return C.claim(cid, text, held, "polynomial vs ReLU by N: " + "; ".join(
        f"{n:,}: train {a.loc[n, 'train_err']:.3f} vs {b.loc[n, 'train_err']:.3f}, test {a.loc[n, 'test_err']:.3f} vs "
        f"{b.loc[n, 'test_err']:.3f} (+- {e:.3f})" for n, e in zip(ns, se)),
        f"held if at every N the train errors differ by at most {t} and the test errors by at most {t} with "
        f"{z:g} se to spare; refuted if one differs by more (the test error beyond {z:g} se)",
        inconclusive=None if held or refuted else C.WITHIN_NOISE)


def _neurons_at_first_w_past_n(final, N):
    # The figure's axis is neurons; mark the width whose weight count first reaches N.
    past = final[final["n_params"] >= N]["n_neurons"]
    return (float(past.min()) if len(past) else None), f"first W >= N = {N:,}"


def err_vs_neurons(inp: Inputs) -> Outcome:
    tol = inp.tol

    def claims_of(final, pts, N):
        return [C.train_near_zero("m100-err-vs-neurons:train-zero-past-N", "train error near 0 once W >= N", final,
                                  final["n_params"] >= N, f"W >= N = {N}", tol),
                C.beyond_threshold("m100-err-vs-neurons:test-no-rise-past-N",
                                   "test error does not rise past the size of the training set", pts, "n_params",
                                   "test_err", N, f"W >= N = {N}", "flat_or_falls", tol)]
    return _width_sweep(inp, claims_of, "n_neurons", "number of neurons (hidden channels)",
                        _neurons_at_first_w_past_n)
