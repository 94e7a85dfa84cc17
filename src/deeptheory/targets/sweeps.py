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
from . import Inputs, Outcome


def final_rows(inp: Inputs) -> pd.DataFrame:
    runs = inp.runs
    return runs[runs["final"].astype(bool)].reset_index(drop=True)


def _setup(final: pd.DataFrame, fixed: str) -> str:
    return (f"model {final['model'].iloc[0]}; {fixed}; {final['seed'].nunique()} seed(s), "
            f"final rows of {len(final)} runs")


def _n_sweep(inp: Inputs, claims_of, chance: float | None = None) -> Outcome:
    final = final_rows(inp)
    W = int(final["n_params"].iloc[0])
    pts = C.by_point(final, "N")

    def draw(caption, png, pdf):
        plots.error_sweep(final, "N", "training-set size N", caption, png, pdf, marker=W,
                          marker_label=f"N = W = {W:,}", chance=chance)
    return Outcome(pts, claims_of(final, pts, W), draw, _setup(final, f"W = {W:,} weights"))


def _width_sweep(inp: Inputs, claims_of, x: str, xlabel: str, marker_of) -> Outcome:
    final = final_rows(inp)
    N = int(final["N"].iloc[0])
    pts = C.by_point(final, "n_params")
    pts.insert(0, "width", final.groupby("n_params")["width"].first().reindex(pts["n_params"]).values)
    marker, marker_label = marker_of(final, N)

    def draw(caption, png, pdf):
        plots.error_sweep(final, x, xlabel, caption, png, pdf, marker=marker, marker_label=marker_label,
                          scales=("log", "linear") if x == "n_params" else ("log",))
    return Outcome(pts, claims_of(final, pts, N), draw, _setup(final, f"N = {N:,}"))


def err_vs_n(inp: Inputs) -> Outcome:
    tol = inp.tol

    def claims_of(final, pts, W):
        return [
            C.train_near_zero("t3-err-vs-n:train-zero-below-W", "train error near 0 for N < W", final,
                              final["N"] < W, f"N < W = {W}", tol),
            C.falls_with("t3-err-vs-n:test-falls", "test error falls as N grows", pts, "N", "test_err", tol),
            C.beyond_threshold("t3-err-vs-n:gap-shrinks-above-W", "test-train gap shrinks for N > W", pts, "N",
                               "gap", W, f"N >= W = {W}", "falls", tol),
        ]
    return _n_sweep(inp, claims_of)


def err_vs_n_random(inp: Inputs) -> Outcome:
    tol = inp.tol

    def claims_of(final, pts, W):
        small = tol.small_n_factor * W
        num_classes = int(final["num_classes"].iloc[0])
        return [
            C.at_chance("t3-err-vs-n-random:test-at-chance", "test error at chance for every N", final,
                        num_classes, tol),
            C.train_near_zero("t3-err-vs-n-random:train-zero-small-N", "train error near 0 for N << W", final,
                              final["N"] <= small, f"N <= {tol.small_n_factor:g} W = {small:.0f}", tol),
            C.beyond_threshold("t3-err-vs-n-random:train-rises-above-W", "train error rises toward chance for N > W",
                               pts, "N", "train_err", W, f"N >= W = {W}", "rises", tol),
        ]
    final = final_rows(inp)
    return _n_sweep(inp, claims_of, chance=1 - 1 / int(final["num_classes"].iloc[0]))


def _first_w_past_n(final, N):
    return N, f"W = N = {N:,}"


def err_vs_w(inp: Inputs) -> Outcome:
    tol = inp.tol

    def claims_of(final, pts, N):
        return [
            C.train_near_zero("t3-err-vs-w:train-zero-above-N", "train error reaches 0 once W >= N", final,
                              final["n_params"] >= N, f"W >= N = {N}", tol),
            C.beyond_threshold("t3-err-vs-w:test-no-rise-above-N", "test error does not rise for W > N", pts,
                               "n_params", "test_err", N, f"W >= N = {N}", "flat_or_falls", tol),
        ]
    return _width_sweep(inp, claims_of, "n_params", "number of weights W", _first_w_past_n)


def _neurons_at_first_w_past_n(final, N):
    # The figure's axis is neurons; mark the width whose weight count first reaches N.
    past = final[final["n_params"] >= N]["n_neurons"]
    return (float(past.min()) if len(past) else None), f"first W >= N = {N:,}"


def err_vs_neurons(inp: Inputs) -> Outcome:
    tol = inp.tol

    def claims_of(final, pts, N):
        return [C.beyond_threshold("m100-err-vs-neurons:test-no-rise-past-N",
                                   "test error does not rise past the size of the training set", pts, "n_params",
                                   "test_err", N, f"W >= N = {N}", "flat_or_falls", tol)]
    return _width_sweep(inp, claims_of, "n_neurons", "number of neurons (hidden channels)",
                        _neurons_at_first_w_past_n)


BUILD = {
    "t3-err-vs-n": err_vs_n,
    "t3-err-vs-n-random": err_vs_n_random,
    "t3-err-vs-w": err_vs_w,
    "m100-err-vs-neurons": err_vs_neurons,
}
