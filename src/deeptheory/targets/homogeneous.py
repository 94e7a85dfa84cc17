"""Synthetic targets on homogeneous ReLU nets under GD: the two-layer net of the slides and
the deep net of memo100 section 3.E (layer-norm balance, normalized margin)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import claims as C
from .. import fits, plots
from . import Inputs, Outcome

from ..synthetic import linear, nets


def two_layer_margin(inp: Inputs) -> Outcome:
    cfg, tol, seed = inp.cfg, inp.tol, inp.seed
    X, y = nets.xor_data(cfg["n"], np.random.default_rng(seed))
    table = pd.DataFrame(nets.train_homogeneous(X, y, [2, cfg["q"], 1], cfg["loss"], cfg["steps"], cfg["eta"], seed))
    table["norm_1"], table["norm_2"] = np.sqrt(table["sq_norm_1"]), np.sqrt(table["sq_norm_2"])
    steps = cfg["steps"]
    fit = table[table["train_err"] == 0]
    first = int(fit["step"].min()) if len(fit) else None
    last_decade = table[table["step"] >= steps / 10]
    slope = float(np.polyfit(np.log(last_decade["step"]), np.log(last_decade["loss"]), 1)[0])
    window = table[table["step"] >= steps / 100]
    norm_fits = [fits.log_fit(window["step"], window[f"norm_{k}"]) for k in (1, 2)]
    nm = last_decade["normalized_margin"]
    change = float(abs(nm.iloc[-1] - nm.iloc[0]) / abs(nm.iloc[-1]))
    out = [
        C.claim("slides-two-layer-margin:separable", "the data become separable", first is not None,
                f"train error 0 from step {first}" if first is not None else "never separated",
                f"2-layer ReLU net without biases, q = {cfg['q']}, {cfg['loss']} loss, XOR-labelled 2D data"),
        C.claim("slides-two-layer-margin:loss-1-over-k", "the loss falls like 1/k", abs(slope + 1) <= tol.rate_tol,
                f"log-log slope of the loss over the last decade {slope:.3f}", f"held if within {tol.rate_tol} of -1"),
        C.claim("slides-two-layer-margin:norms-log-k", "layer norms grow like log k",
                all(s > 0 and r2 >= tol.r2_min for s, r2 in norm_fits),
                "; ".join(f"layer {k}: slope {s:.3f}, R^2 {r2:.4f}" for k, (s, r2) in zip((1, 2), norm_fits)),
                f"linear fit of the Frobenius norms on log k for k >= {steps // 100}; held if slope > 0 and R^2 >= {tol.r2_min}"),
        C.claim("slides-two-layer-margin:margin-levels-off", "the normalized margin levels off",
                nm.iloc[-1] > 0 and change <= tol.level_tol,
                f"normalized margin {nm.iloc[0]:.4f} at k = {last_decade['step'].iloc[0]}, {nm.iloc[-1]:.4f} at k = {steps}",
                f"held if positive and changing by at most {tol.level_tol:.0%} over the last decade"),
    ]

    def draw(caption, png, pdf):
        fig, axes = plots.panels(3, width=3.6)
        k = table["step"].clip(lower=1)
        axes[0].loglog(k, table["loss"], label="loss")
        axes[0].loglog(k, table["loss"].iloc[-1] * steps / k, ls=":", color="grey", label="1/k")
        axes[1].plot(k, table["norm_1"], label="|W1|")
        axes[1].plot(k, table["norm_2"], label="|w2|")
        axes[1].set_xscale("log")
        axes[2].plot(k, table["normalized_margin"])
        axes[2].set_xscale("log")
        axes[2].set_ylabel("normalized margin")
        for ax in axes:
            ax.set_xlabel("GD step k")
        axes[0].legend(fontsize=7)
        axes[1].legend(fontsize=7)
        plots.save(fig, caption, png, pdf)
    return Outcome(table, out, draw)


def balance(inp: Inputs) -> Outcome:
    cfg, tol, seed = inp.cfg, inp.tol, inp.seed
    rng = np.random.default_rng(seed)
    X, y = linear.separable_blobs(cfg["n"], cfg["d"], cfg["margin"], rng)
    widths = [cfg["d"], *cfg["hidden"], 1]
    table = pd.DataFrame(nets.train_homogeneous(X, y, widths, "exp", cfg["steps"], cfg["eta"], seed, init_scale=1.0))
    L = len(widths) - 1
    sq = table[[f"sq_norm_{k}" for k in range(1, L + 1)]].to_numpy()
    diffs = sq[:, :-1] - sq[:, 1:]
    growth = sq[-1] - sq[0]
    drift = float(np.abs(diffs - diffs[0]).max())
    spread = float((growth.max() - growth.min()) / growth.max())
    sep = table[table["train_err"] == 0]
    nm0 = float(sep["normalized_margin"].iloc[0]) if len(sep) else float("nan")
    nm1 = float(table["normalized_margin"].iloc[-1])
    out = [
        C.claim("m100-balance:differences-constant", "differences of squared layer norms stay constant under GD",
                drift <= tol.balance_tol * growth.max(),
                f"largest drift of |W_k|^2 - |W_k+1|^2: {drift:.4f}; largest growth of |W_k|^2: {growth.max():.3f}",
                f"held if the drift is <= {tol.balance_tol} of the growth; step {cfg['eta']}, {L} layers"),
        C.claim("m100-balance:same-rate", "layer norms grow at the same rate", spread <= tol.balance_tol,
                "growth of |W_k|^2 by layer: " + ", ".join(f"{g:.3f}" for g in growth),
                f"held if (max - min) / max <= {tol.balance_tol}"),
        C.claim("m100-balance:margin-rises", "the normalized margin increases", len(sep) > 0 and nm1 > nm0,
                f"normalized margin {nm0:.4f} when the data first separate, {nm1:.4f} at the end",
                "margin / product of layer Frobenius norms"),
    ]

    def draw(caption, png, pdf):
        fig, axes = plots.panels(2, width=4.6)
        k = table["step"].clip(lower=1)
        for j in range(L):
            axes[0].plot(k, sq[:, j], label=f"|W{j + 1}|^2")
        for j in range(L - 1):
            axes[0].plot(k, diffs[:, j], ls="--", label=f"|W{j + 1}|^2 - |W{j + 2}|^2")
        axes[1].plot(k, table["normalized_margin"])
        axes[1].set_ylabel("normalized margin")
        for ax in axes:
            ax.set_xscale("log")
            ax.set_xlabel("GD step")
        axes[0].legend(fontsize=7)
        plots.save(fig, caption, png, pdf)
    return Outcome(table, out, draw)


BUILD = {
    "slides-two-layer-margin": two_layer_margin,
    "m100-balance": balance,
}
