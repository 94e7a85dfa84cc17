"""Synthetic target: deep (binary-tree) vs shallow nets on a hierarchically compositional
function (memo100 Fig 1, Theorems 1-2; slides).

The training runs give a small table (one row per net: n, net, grid, k, params,
test_mse); the pure function :func:`deep_vs_shallow_claims` reads the claims from it, so
tests can feed it tables that break each claim."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import claims as C
from .. import plots
from . import Inputs, Outcome

from ..synthetic import compositional


def params_to_reach(frame: pd.DataFrame, error: float) -> float:
    ok = frame[frame["test_mse"] <= error]
    return float(ok["params"].min()) if len(ok) else float("inf")


def deep_vs_shallow_claims(table: pd.DataFrame, cfg: dict, tol) -> list[dict]:
    eps, ceiling = float(cfg["error"]), int(cfg["shallow_max_params"])
    n_max = int(table["n"].max())
    g = table[table["n"] == n_max]
    deep, shallow = g[g["net"] == "deep"], g[g["net"] == "shallow"]
    p_deep, p_shallow = params_to_reach(deep, eps), params_to_reach(shallow, eps)
    tried = int(shallow["params"].max())
    if not np.isfinite(p_deep):
        held, ratio = False, f"deep net never reaches it (up to {int(deep['params'].max())} parameters)"
    elif np.isfinite(p_shallow):
        held, ratio = p_shallow / p_deep >= tol.min_ratio, f"ratio {p_shallow / p_deep:.2f}"
    else:  # a lower bound: the shallow net needs more than the largest count tried
        held, ratio = tried / p_deep >= tol.min_ratio, f"ratio > {tried / p_deep:.2f} (a lower bound)"
    fmt = lambda p: f"{p:.0f}" if np.isfinite(p) else f"> {tried} (not reached; ceiling {ceiling})"  # noqa: E731
    at = lambda f: ", ".join(f"{p}: {e:.4f}" for p, e in zip(f["params"], f["test_mse"]))  # noqa: E731
    gaps = {}
    for n, h in table[table["grid"] == "matched"].groupby("n"):
        d = h[h["net"] == "deep"].set_index("k")["test_mse"]
        s = h[h["net"] == "shallow"].set_index("k")["test_mse"]
        gaps[int(n)] = float(np.log(s / d).mean())
    ns = sorted(gaps)
    return [
        C.claim("m100-deep-vs-shallow:fewer-params", "the deep net reaches a given error with far fewer parameters", held,
                f"n = {n_max}: parameters to reach relative test MSE {eps}: deep {fmt(p_deep)}, shallow {fmt(p_shallow)} "
                f"({ratio}); test MSE by parameters, deep: {at(deep)}; shallow: {at(shallow)}",
                f"held if the shallow net needs >= {tol.min_ratio}x the deep net's parameters; a shallow net that never reaches "
                f"the error counts only as needing more than the largest count tried (the grid doubles up to {ceiling}); fails "
                f"if a shallow net with fewer than {tol.min_ratio}x reaches it, or the bound is too weak. Learning rate and "
                f"stopping step chosen on validation; test MSE at that step"),
        C.claim("m100-deep-vs-shallow:gap-widens", "the gap widens with n",
                len(ns) >= 2 and all(gaps[a] < gaps[b] for a, b in zip(ns, ns[1:])),
                "mean log(shallow / deep test MSE) at matched parameters: " + ", ".join(f"n = {n}: {gaps[n]:+.3f}" for n in ns),
                "held if it increases with n; fails if the shallow net's disadvantage is as large or larger at small n"),
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
                ax.plot(sub["params"], sub["test_mse"], marker="o", label=kind)
            ax.axhline(eps, color="grey", ls="--", lw=1)
            ax.set_xscale("log")
            plots.log_ticks(ax, sorted(g["params"]))
            ax.set_yscale("log")
            ax.set_title(f"n = {n}")
            ax.set_xlabel("parameters")
            ax.legend(fontsize=7)
        axes[0].set_ylabel("test MSE / Var f")
        plots.save(fig, caption, png, pdf)
    return Outcome(table, deep_vs_shallow_claims(table, cfg, tol), draw)


BUILD = {"m100-deep-vs-shallow": deep_vs_shallow}
