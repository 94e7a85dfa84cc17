"""Synthetic target: deep (binary-tree) vs shallow nets on a hierarchically compositional
function (memo100 Fig 1, Theorems 1-2; slides)."""

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


def deep_vs_shallow(inp: Inputs) -> Outcome:
    cfg, tol, seed = inp.cfg, inp.tol, inp.seed
    rows = []
    for n in cfg["n_vars"]:
        rows += compositional.compare(n, cfg["ks"], cfg["lrs"], cfg["steps"], cfg["n_train"], cfg["n_test"], seed)
    table = pd.DataFrame(rows)
    eps = float(cfg["error"])
    need, gaps = {}, {}
    for n, g in table.groupby("n"):
        deep, shallow = g[g["net"] == "deep"].set_index("k"), g[g["net"] == "shallow"].set_index("k")
        need[n] = (params_to_reach(deep, eps), params_to_reach(shallow, eps))
        gaps[n] = float(np.log(shallow["test_mse"] / deep["test_mse"]).mean())
    n_max = max(need)
    p_deep, p_shallow = need[n_max]
    fmt = lambda p: f"{p:.0f}" if np.isfinite(p) else f"> {table['params'].max()} (not reached)"  # noqa: E731
    ns = sorted(gaps)
    out = [
        C.claim("m100-deep-vs-shallow:fewer-params", "the deep net reaches a given error with far fewer parameters",
                bool(np.isfinite(p_deep) and p_shallow / p_deep >= tol.min_ratio),
                f"n = {n_max}: parameters to reach relative test MSE {eps}: deep {fmt(p_deep)}, shallow {fmt(p_shallow)}",
                f"held if shallow needs >= {tol.min_ratio}x the deep net's parameters (on the grid)"),
        C.claim("m100-deep-vs-shallow:gap-widens", "the gap widens with n",
                len(ns) >= 2 and all(gaps[a] < gaps[b] for a, b in zip(ns, ns[1:])),
                "mean log(shallow / deep test MSE) at matched parameters: " + ", ".join(f"n = {n}: {gaps[n]:+.3f}" for n in ns),
                "held if it increases with n"),
    ]

    def draw(caption, png, pdf):
        fig, axes = plots.panels(len(ns), width=4.0)
        for ax, n in zip(axes, ns):
            g = table[table["n"] == n]
            for kind, sub in g.groupby("net"):
                ax.plot(sub["params"], sub["test_mse"], marker="o", label=kind)
            ax.axhline(eps, color="grey", ls="--", lw=1)
            ax.set_xscale("log")
            plots.log_ticks(ax, sorted(g[g["net"] == "deep"]["params"]))
            ax.set_yscale("log")
            ax.set_title(f"n = {n}")
            ax.set_xlabel("parameters")
            ax.legend(fontsize=7)
        axes[0].set_ylabel("test MSE / Var f")
        plots.save(fig, caption, png, pdf)
    return Outcome(table, out, draw)


BUILD = {"m100-deep-vs-shallow": deep_vs_shallow}
