"""Synthetic target: deep (binary-tree) vs shallow nets on a hierarchically compositional
function (memo100 Fig 1, Theorems 1-2; slides).

The training runs give a small table (one row per net: n, net, grid, k, params,
train_mse, test_mse, test_mse_se); the pure function :func:`deep_vs_shallow_claims` reads
the claims from it, so tests can feed it tables that break each claim.

memo100's Theorems 1-2 and its Discussion ("A main difference between shallow and deep
networks is in terms of *approximation* power") are about approximation: how many
parameters a net needs to come within an error of the function. A net's test error is its
approximation error plus an estimation error from the finite training set; only where the
second is small does the test error measure the first. A net whose test MSE lies above
``claims.overfit_ratio`` x its training MSE beyond ``noise_z`` standard errors of the test
MSE overfits: a comparison that reads its test error is about estimation, and its verdict
is inconclusive (outside the regime at this scale).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import claims as C
from .. import plots
from . import Inputs, Outcome, Target

from ..synthetic import compositional

# The registry's entries (deeptheory.targets): plain literals, read without importing this module.
TARGETS = [
    Target(
        id="m100-deep-vs-shallow",
        source="memo100 Fig 1, Theorems 1-2; slides",
        what="shallow vs binary-tree nets on a hierarchically compositional function: test and training error vs "
             "parameters",
        claims="the deep (binary-tree) net reaches a given error with far fewer parameters than the shallow one; the "
               "gap widens with n",
        builder="deep_vs_shallow",
    ),
]


def params_to_reach(frame: pd.DataFrame, error: float) -> float:
    ok = frame[frame["test_mse"] <= error]
    return float(ok["params"].min()) if len(ok) else float("inf")


def overfits(frame: pd.DataFrame, tol) -> pd.Series:
    """Nets whose test MSE exceeds ``overfit_ratio`` x their training MSE beyond ``noise_z``
    standard errors of the test MSE (module docstring)."""
    se = frame["test_mse_se"] if "test_mse_se" in frame else 0.0
    return (frame["test_mse"] - tol.noise_z * se) > tol.overfit_ratio * frame["train_mse"]


def _overfit_text(frame: pd.DataFrame) -> str:
    return ", ".join(f"n = {int(r.n)} {r.net} {int(r.params)}: test {r.test_mse:.4f} vs train {r.train_mse:.4f}"
                     for r in frame.itertuples())


def deep_vs_shallow_claims(table: pd.DataFrame, cfg: dict, tol) -> list[dict]:
    eps, ceiling = float(cfg["error"]), int(cfg["shallow_max_params"])
    n_max = int(table["n"].max())
    g = table[table["n"] == n_max]
    deep, shallow = g[g["net"] == "deep"], g[g["net"] == "shallow"]
    p_deep, p_shallow = params_to_reach(deep, eps), params_to_reach(shallow, eps)
    tried = int(shallow["params"].max())
    # The grid brackets what each net needs: more than the largest count below the first that reaches the error
    # (all of those miss it), at most that first count. The ratio is known only to lie between the two brackets'
    # ends; where they straddle min_ratio, the grid's steps are too coarse to decide (as is a lower bound below it).
    coarse = None
    if not np.isfinite(p_deep):
        held, ratio = False, f"deep net never reaches it (up to {int(deep['params'].max())} parameters)"
    elif np.isfinite(p_shallow):
        below_s, below_d = shallow[shallow["params"] < p_shallow], deep[deep["params"] < p_deep]
        lo = float(below_s["params"].max()) / p_deep if len(below_s) else 0.0
        hi = p_shallow / float(below_d["params"].max()) if len(below_d) else float("inf")
        held = lo >= tol.min_ratio
        ratio = f"ratio {p_shallow / p_deep:.2f}, between {lo:.2f} and {hi:.2f} at the grid's steps"
        coarse = None if held or hi < tol.min_ratio else C.UNTESTABLE
    else:  # a lower bound: the shallow net needs more than the largest count tried
        held, ratio = tried / p_deep >= tol.min_ratio, f"ratio > {tried / p_deep:.2f} (a lower bound)"
        coarse = None if held else C.UNTESTABLE
    fmt = lambda p: f"{p:.0f}" if np.isfinite(p) else f"> {tried} (not reached; ceiling {ceiling})"  # noqa: E731
    at = lambda f: ", ".join(f"{p}: {e:.4f} ({t:.4f})" for p, e, t in zip(f["params"], f["test_mse"],  # noqa: E731
                                                                          f["train_mse"]))
    # A net that reaches the error settles nothing by overfitting (its test error is only raised by it); one
    # that misses it while overfitting may miss it for want of data, not of parameters.
    missed = g[(g["test_mse"] > eps) & overfits(g, tol)]
    matched = table[table["grid"] == "matched"]
    matched_over = matched[overfits(matched, tol)]
    regime = (f"inconclusive (estimation, not approximation) if a net it reads overfits: test MSE above "
              f"{tol.overfit_ratio:g}x its training MSE beyond {tol.noise_z:g} standard errors")
    gaps = {}
    for n, h in table[table["grid"] == "matched"].groupby("n"):
        d = h[h["net"] == "deep"].set_index("k")["test_mse"]
        s = h[h["net"] == "shallow"].set_index("k")["test_mse"]
        gaps[int(n)] = float(np.log(s / d).mean())
    ns = sorted(gaps)
    over_text = lambda f: f"; overfit (missing the error): {_overfit_text(f)}" if len(f) else "; no net overfits"  # noqa: E731
    return [
        C.claim("m100-deep-vs-shallow:fewer-params", "the deep net reaches a given error with far fewer parameters", held,
                f"n = {n_max}: parameters to reach relative test MSE {eps}: deep {fmt(p_deep)}, shallow {fmt(p_shallow)} "
                f"({ratio}); test MSE (training MSE) by parameters, deep: {at(deep)}; shallow: {at(shallow)}"
                + over_text(missed),
                f"held if the shallow net needs >= {tol.min_ratio}x the deep net's parameters, at the least reading of the "
                f"grid (the largest shallow count that misses the error over the first deep count that reaches it); a shallow "
                f"net that never reaches the error counts only as needing more than the largest count tried (the grid doubles "
                f"up to {ceiling}); fails if even the most favourable reading (first shallow count reaching it over the "
                f"largest deep count missing it) is under {tol.min_ratio}x, or the deep net never reaches it; inconclusive "
                f"where the grid's steps straddle {tol.min_ratio}x or a lower bound is under it; {regime} and misses "
                f"the error. Learning rate and stopping step chosen on validation; test and training MSE at that step",
                inconclusive=C.OUT_OF_REGIME if len(missed) else coarse),
        C.claim("m100-deep-vs-shallow:gap-widens", "the gap widens with n",
                len(ns) >= 2 and all(gaps[a] < gaps[b] for a, b in zip(ns, ns[1:])),
                "mean log(shallow / deep test MSE) at matched parameters: " + ", ".join(f"n = {n}: {gaps[n]:+.3f}" for n in ns)
                + (f"; overfit: {_overfit_text(matched_over)}" if len(matched_over) else "; no matched net overfits"),
                f"held if it increases with n; fails if the shallow net's disadvantage is as large or larger at small n; "
                f"{regime}", inconclusive=C.OUT_OF_REGIME if len(matched_over) else None if len(ns) >= 2 else C.UNTESTABLE),
    ]


def deep_vs_shallow(inp: Inputs) -> Outcome:
    cfg, tol, seed = inp.cfg, inp.tol, inp.seed
    rows = []
    for n in cfg["n_vars"]:
        rows += compositional.compare(n, cfg["ks"], cfg["lrs"], cfg["steps"], cfg["n_train"], cfg["n_test"], seed,
                                      error=float(cfg["error"]), shallow_max_params=int(cfg["shallow_max_params"]),
                                      device=inp.device)
    table = pd.DataFrame(rows)
    eps = float(cfg["error"])
    ns = sorted(table["n"].unique())

    def draw(caption, png, pdf):
        fig, axes = plots.panels(len(ns), width=4.0)
        for ax, n in zip(axes, ns):
            g = table[table["n"] == n]
            for kind, sub in g.groupby("net"):
                line, = ax.plot(sub["params"], sub["test_mse"], marker="o", label=f"{kind}, test")
                ax.plot(sub["params"], sub["train_mse"], marker=".", ls=":", color=line.get_color(),
                        label=f"{kind}, train")
            ax.axhline(eps, color="grey", ls="--", lw=1)
            ax.set_xscale("log")
            plots.log_ticks(ax, sorted(g["params"]))
            ax.set_yscale("log")
            ax.set_title(f"n = {n}")
            ax.set_xlabel("parameters")
            ax.legend(fontsize=7)
        axes[0].set_ylabel("MSE / Var f")
        plots.save(fig, caption, png, pdf)
    return Outcome(table, deep_vs_shallow_claims(table, cfg, tol), draw)
