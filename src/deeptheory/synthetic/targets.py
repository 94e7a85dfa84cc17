"""The synthetic targets (EXPERIMENTS.md section B): each runs its computation from its
config entry (``profiles.<profile>.synthetic.<id>``), checks its claims on what it
computed, and draws the figure a reader of the memos recognises.

Every experiment function returns ``(table, claim rows, draw)``; ``draw(caption, png, pdf)``
writes the figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from .. import claims as C
from .. import plots
from ..atomic import write_csv
from ..tables import write_table
from . import compositional, langevin, linear, nets


def _sampler(cfg):
    return float(cfg["eta"]), float(cfg["sigma"])


def log_fit(t, v) -> tuple[float, float]:
    """Slope and R^2 of v against log t."""
    x = np.log(np.asarray(t, float))
    v = np.asarray(v, float)
    slope, icept = np.polyfit(x, v, 1)
    resid = v - (slope * x + icept)
    return float(slope), float(1 - resid.var() / v.var()) if v.var() > 0 else 0.0


# --- potentials ------------------------------------------------------------------------


def _shares(potential, dims, cfg, seed, start=None):
    eta, sigma = _sampler(cfg)
    rows, slices = [], {}
    for D in dims:
        rng = np.random.default_rng([seed, D])
        w0 = (np.full((cfg["chains"], D), float(start)) if start is not None
              else rng.uniform(0, potential.box, (cfg["chains"], D)))
        states = langevin.run_chains(potential.grad, w0, cfg["steps"], eta, sigma, rng, box=potential.box)
        in_well, in_flat = langevin.basins(potential, states)
        share, se = langevin.ratio_with_error(in_flat, in_well)
        half = len(in_well) // 2
        rows.append({"D": D, "share_flat": share, "se": se, "in_wells": float(in_well.mean()),
                     "share_first_half": in_flat[:half].sum() / in_well[:half].sum(),
                     "share_second_half": in_flat[half:].sum() / in_well[half:].sum(), "T": sigma**2 / (2 * eta)})
        slices[D] = states[:, :, 0].ravel()
    return pd.DataFrame(rows), slices


def _slice_figure(slices, box, marks, xlabel):
    def draw(caption, png, pdf):
        fig, axes = plots.panels(len(slices), width=2.8)
        for ax, (D, values) in zip(axes, slices.items()):
            ax.hist(values, bins=30, range=(0, box), density=True, color="tab:blue")
            for m, label in marks:
                ax.axvline(m, color="grey", ls="--", lw=0.8, label=f"{label} minimum")
            ax.set_title(f"{D}D")
            ax.set_xlabel(xlabel)
        axes[0].set_ylabel("density")
        axes[0].legend(fontsize=6)
        plots.save(fig, caption, png, pdf)
    return draw


def langevin_dims(cfg, tol, seed):
    P = langevin.TwoWells()
    table, slices = _shares(P, cfg["dims"], cfg, seed, start=cfg["start"])
    t = 3 * float(table["se"].max())
    held, worst = C.trend(table["D"], table["share_flat"], t, "rises")
    out = [C.claim("t3-langevin-dims:flat-share-grows", "the share of samples in the flatter minimum grows with dimension",
                   held, "share of the wells' samples in the flat one by D: "
                   + ", ".join(f"{d}: {s:.3f}" for d, s in zip(table["D"], table["share_flat"])),
                   f"rises: tolerance {t:.4f} (3 standard errors over chains); worst step against it {worst:+.4f}; "
                   f"samples in either well (U < {langevin.WELL_LEVEL}) by D: "
                   + ", ".join(f"{x:.2f}" for x in table["in_wells"]) + "; "
                   f"T = {table['T'].iloc[0]:.3f}; first vs second half of each chain differ by at most "
                   f"{(table['share_first_half'] - table['share_second_half']).abs().max():.3f}")]
    # The sampler itself, on a case with a known answer.
    ck = cfg["check"]
    exact = langevin.boltzmann_right_share(ck["T"])
    got, se = langevin.sampled_right_share(ck["T"], ck["eta"], ck["steps"], ck["chains"], seed)
    out.append(C.claim("t3-langevin-dims:sampler-matches-boltzmann",
                       "GDL on a double well puts the Boltzmann share of mass in each well",
                       abs(got - exact) <= 3 * se, f"right-well share {got:.4f} +- {se:.4f} sampled, {exact:.4f} exact",
                       f"held within 3 standard errors; U = (x^2 - 1)^2 + x/4, T = {ck['T']}, eta = {ck['eta']}, "
                       f"exact share by numerical integration"))
    return table, out, _slice_figure(slices, P.box, [(P.a, "narrow"), (P.b, "flat")], "w1")


def langevin_2d(cfg, tol, seed):
    P = langevin.ValleyAndPoint()
    table, slices = _shares(P, cfg["dims"], cfg, seed)
    table = table.rename(columns={"share_flat": "share_degenerate"})
    t = 3 * float(table["se"].max())
    worst_low = float((table["share_degenerate"] - 3 * table["se"]).min())
    held, worst = C.trend(table["D"], table["share_degenerate"], t, "rises")
    shares = ", ".join(f"{d}: {s:.4f}" for d, s in zip(table["D"], table["share_degenerate"]))
    return table, [
        C.claim("t3-langevin-2d:degenerate-holds-more", "the degenerate minimum holds more mass", worst_low > 0.5,
                f"share in degenerate minimum by D: {shares}", "held if every share exceeds 0.5 by 3 standard errors"),
        C.claim("t3-langevin-2d:concentration-grows", "concentration on the degenerate minimum grows with dimension",
                held, f"share by D: {shares}", f"rises: tolerance {t:.4f} (3 standard errors); worst step {worst:+.4f}"),
    ], _slice_figure(slices, P.box, [(P.v, "degenerate"), (P.p, "point")], "w1 (degenerate minimum at %.1f)" % P.v)


def sgd_potential(cfg, tol, seed):
    P = langevin.ValleyAndPoint()
    eta, sigma = _sampler(cfg)
    rng = np.random.default_rng(seed)
    shifts = rng.normal(0, cfg["spread"], (cfg["n_points"], 2))
    grad = langevin.minibatch_gradient(P, shifts, cfg["batch"])
    rows, states = [], {}
    for method, noise in [("SGD", 0.0), ("SGDL", sigma)]:
        r = np.random.default_rng([seed, int(noise * 1000)])
        s = langevin.run_chains(None, r.uniform(0, P.box, (cfg["chains"], 2)), cfg["steps"], eta, noise, r,
                                box=P.box, grad_noise=grad)
        in_well, in_flat = langevin.basins(P, s)
        share, se = langevin.ratio_with_error(in_flat, in_well)
        rows.append({"method": method, "share_degenerate": share, "se": se, "in_wells": float(in_well.mean()),
                     "noise_sigma": noise})
        states[method] = s
    table = pd.DataFrame(rows)
    out = [C.claim(f"t3-sgd-potential:{r.method.lower()}-prefers-degenerate",
                   f"{r.method} prefers the degenerate minimum", r.share_degenerate - 3 * r.se > 0.5,
                   f"share in degenerate minimum {r.share_degenerate:.4f} +- {r.se:.4f}",
                   f"held if above 0.5 by 3 standard errors; minibatch {cfg['batch']} of {cfg['n_points']} "
                   f"shifted copies of the potential (spread {cfg['spread']})") for r in table.itertuples()]

    def draw(caption, png, pdf):
        fig, axes = plots.panels(3, width=3.4)
        for ax, (method, s) in zip(axes[:2], states.items()):
            ax.hist(s[:, :, 0].ravel(), bins=30, range=(0, P.box), density=True)
            ax.set_title(method)
            ax.set_xlabel("w1 (degenerate minimum at %.1f)" % P.v)
        last = states["SGDL"][-1]
        axes[2].scatter(last[:, 0], last[:, 1], s=3, alpha=0.5)
        axes[2].set_title("SGDL, final states")
        axes[2].set_xlabel("w1")
        axes[2].set_ylabel("w2")
        plots.save(fig, caption, png, pdf)
    return table, out, draw


# --- linear models ---------------------------------------------------------------------


def minnorm(cfg, tol, seed):
    rng = np.random.default_rng(seed)
    X, y = linear.least_squares(cfg["n"], cfg["d"], rng)
    w_pinv = np.linalg.pinv(X) @ y
    w0 = rng.standard_normal(cfg["d"])
    null = linear.null_space_part(X, w0)
    rows, traces = [], {}
    for method, batch in [("GD", None), ("SGD", cfg["batch"])]:
        for init, start in [("zero", np.zeros(cfg["d"])), ("nonzero", w0)]:
            w, trace = linear.gd_least_squares(X, y, start, cfg["steps"], batch, np.random.default_rng(seed + 1))
            predicted = w_pinv + (null if init == "nonzero" else 0)
            rows.append({"method": method, "init": init, "gap_to_pinv": np.linalg.norm(w - w_pinv),
                         "null_part_of_init": np.linalg.norm(null) if init == "nonzero" else 0.0,
                         "rel_error_to_prediction": np.linalg.norm(w - predicted) / np.linalg.norm(predicted),
                         "residual": np.linalg.norm(X @ w - y)})
            traces[f"{method}, {init} init"] = [(t, np.linalg.norm(v - w_pinv)) for t, v in trace]
    table = pd.DataFrame(rows)
    zero, nonzero = table[table["init"] == "zero"], table[table["init"] == "nonzero"]
    gap_vs_null = (nonzero["gap_to_pinv"] - nonzero["null_part_of_init"]).abs() / nonzero["null_part_of_init"]
    out = [
        C.claim("t3-minnorm:zero-init-pinv", "from zero init GD and SGD converge to the pseudoinverse solution",
                bool((zero["gap_to_pinv"] / np.linalg.norm(w_pinv) <= tol.minnorm_tol).all()),
                "relative distance to X^+ y: " + ", ".join(f"{m} {g / np.linalg.norm(w_pinv):.2e}"
                                                          for m, g in zip(zero["method"], zero["gap_to_pinv"])),
                f"held if <= {tol.minnorm_tol:g}; n = {cfg['n']} equations, d = {cfg['d']} unknowns"),
        C.claim("t3-minnorm:gap-is-null-part", "from a nonzero init the gap to the pseudoinverse solution equals the init's null-space part",
                bool((gap_vs_null <= tol.minnorm_tol).all() and (nonzero["rel_error_to_prediction"] <= tol.minnorm_tol).all()),
                "gap vs |P_null w0| = %.6f: " % nonzero["null_part_of_init"].iloc[0]
                + ", ".join(f"{m} {g:.6f}" for m, g in zip(nonzero["method"], nonzero["gap_to_pinv"])),
                f"held if the relative difference, and the distance to X^+ y + P_null w0, are <= {tol.minnorm_tol:g}"),
    ]

    def draw(caption, png, pdf):
        fig, axes = plots.panels(1, width=5.5)
        for label, tr in traces.items():
            t, g = zip(*tr)
            axes[0].plot(t, np.maximum(g, 1e-16), label=label)
        axes[0].axhline(np.linalg.norm(null), color="grey", ls="--", lw=1, label="|P_null w0|")
        axes[0].set_yscale("log")
        axes[0].set_xlabel("iteration")
        axes[0].set_ylabel("|w - X^+ y|")
        axes[0].legend(fontsize=7)
        plots.save(fig, caption, png, pdf)
    return table, out, draw


def linear_dynamics(cfg, tol, seed):
    rng = np.random.default_rng(seed)
    X, y = linear.separable_blobs(cfg["n"], cfg["d"], cfg["margin"], rng)
    w_svm = linear.hard_margin_svm(X, y)
    steps = cfg["steps"]
    rows = []
    for loss in ("exp", "logistic"):
        for wn in (False, True):
            _, trace = linear.gd_linear(X, y, loss, steps, cfg["eta"], weight_norm=wn)
            rows += [{"loss": loss, "param": "weight norm" if wn else "plain", "t": t, "norm": np.linalg.norm(w),
                      "angle_to_svm": linear.angle(w, w_svm), "train_loss": v} for t, w, v in trace]
    table = pd.DataFrame(rows)
    late = table[table["t"] >= steps / 1000]
    out = []
    for loss in ("exp", "logistic"):
        plain = late[(late["loss"] == loss) & (late["param"] == "plain")]
        slope, r2 = log_fit(plain["t"], plain["norm"])
        out.append(C.claim(f"m100-linear-dynamics:{loss}-norm-log-t", f"{loss} loss: |w| grows like log t",
                           slope > 0 and r2 >= tol.r2_min, f"slope {slope:.3f} per unit log t, R^2 {r2:.4f}",
                           f"linear fit of |w| on log t for t in [{steps // 1000}, {steps}]; held if slope > 0 and R^2 >= {tol.r2_min}"))
        held, worst = C.trend(plain["t"], plain["angle_to_svm"], 1e-4, "falls")
        out.append(C.claim(f"m100-linear-dynamics:{loss}-direction-to-svm",
                           f"{loss} loss: the direction converges to the hard-margin SVM direction", held,
                           f"angle to SVM {plain['angle_to_svm'].iloc[0]:.4f} rad at t = {plain['t'].iloc[0]}, "
                           f"{plain['angle_to_svm'].iloc[-1]:.4f} at t = {steps}",
                           f"falls over t >= {steps // 1000}: tolerance 1e-4 rad, worst rise {worst:+.5f}; SVM from a QP (SLSQP)"))
        every = table[table["loss"] == loss]
        pl, wn = every[every["param"] == "plain"], every[every["param"] == "weight norm"]
        target = float(pl.iloc[(pl["t"] - steps / 10).abs().argmin()]["angle_to_svm"])
        t_pl = int(pl[pl["angle_to_svm"] <= target]["t"].min())
        hit = wn[wn["angle_to_svm"] <= target]["t"]
        t_wn = int(hit.min()) if len(hit) else None
        out.append(C.claim(f"m100-linear-dynamics:{loss}-weight-norm-faster",
                           f"{loss} loss: weight normalization converges faster", t_wn is not None and t_wn < t_pl,
                           f"steps to reach angle {target:.4f} rad: plain {t_pl}, weight-normalized "
                           f"{t_wn if t_wn is not None else f'not within {steps}'}",
                           "target angle: plain GD's at t = T/10"))

    def draw(caption, png, pdf):
        fig, axes = plots.panels(2, width=4.6)
        for (loss, param), g in table.groupby(["loss", "param"]):
            axes[0].plot(g["t"], g["norm"], label=f"{loss}, {param}")
            axes[1].plot(g["t"], g["angle_to_svm"], label=f"{loss}, {param}")
        axes[0].set_xscale("log")
        axes[0].set_ylabel("|w|")
        axes[1].set_xscale("log")
        axes[1].set_yscale("log")
        axes[1].set_ylabel("angle to SVM direction (rad)")
        for ax in axes:
            ax.set_xlabel("GD step t")
            ax.legend(fontsize=7)
        plots.save(fig, caption, png, pdf)
    return table, out, draw


def nonseparable(cfg, tol, seed):
    rng = np.random.default_rng(seed)
    X, y = linear.nonseparable_blobs(cfg["n"], rng)
    sol, rows = {}, []
    for loss in ("logistic", "exp"):
        w, _ = linear.gd_linear(X, y, loss, cfg["steps"], cfg["eta"])
        _, dm = linear.loss_grad(loss, y * (X @ w))
        gnorm = float(np.linalg.norm(X.T @ (dm * y)))
        sol[loss] = w
        rows.append({"loss": loss, "w1": w[0], "w2": w[1], "bias": w[2], "norm": np.linalg.norm(w),
                     "grad_norm": gnorm, "train_err": float(((X @ w) * y <= 0).mean())})
    table = pd.DataFrame(rows)
    deg = np.degrees(linear.angle(sol["logistic"], sol["exp"]))
    converged = bool((table["grad_norm"] < 1e-6).all())
    out = [C.claim("slides-nonseparable:losses-differ", "logistic and exponential loss give different solutions",
                   converged and deg > tol.solution_angle_deg,
                   f"angle between the solutions {deg:.2f} deg; norms {table['norm'].iloc[0]:.3f} vs {table['norm'].iloc[1]:.3f}",
                   f"held if both converged (gradient norms {table['grad_norm'].max():.1e} < 1e-6) and the angle "
                   f"exceeds {tol.solution_angle_deg} deg")]

    def draw(caption, png, pdf):
        fig, axes = plots.panels(1, width=5.0)
        ax = axes[0]
        ax.scatter(X[:, 0], X[:, 1], c=y, cmap="coolwarm", s=10)
        xs = np.linspace(X[:, 0].min(), X[:, 0].max(), 10)
        for loss, w in sol.items():
            ax.plot(xs, -(w[0] * xs + w[2]) / w[1], label=f"{loss} loss")
        ax.set_ylim(X[:, 1].min(), X[:, 1].max())
        ax.legend(fontsize=7)
        plots.save(fig, caption, png, pdf)
    return table, out, draw


# --- small ReLU nets -------------------------------------------------------------------


def two_layer_margin(cfg, tol, seed):
    X, y = nets.xor_data(cfg["n"], np.random.default_rng(seed))
    torch.set_num_threads(1)
    table = pd.DataFrame(nets.train_homogeneous(X, y, [2, cfg["q"], 1], cfg["loss"], cfg["steps"], cfg["eta"], seed))
    table["norm_1"], table["norm_2"] = np.sqrt(table["sq_norm_1"]), np.sqrt(table["sq_norm_2"])
    steps = cfg["steps"]
    fit = table[table["train_err"] == 0]
    first = int(fit["step"].min()) if len(fit) else None
    last_decade = table[table["step"] >= steps / 10]
    slope = float(np.polyfit(np.log(last_decade["step"]), np.log(last_decade["loss"]), 1)[0])
    window = table[table["step"] >= steps / 100]
    fits = [log_fit(window["step"], window[f"norm_{k}"]) for k in (1, 2)]
    nm = last_decade["normalized_margin"]
    change = float(abs(nm.iloc[-1] - nm.iloc[0]) / abs(nm.iloc[-1]))
    out = [
        C.claim("slides-two-layer-margin:separable", "the data become separable", first is not None,
                f"train error 0 from step {first}" if first is not None else "never separated",
                f"2-layer ReLU net without biases, q = {cfg['q']}, {cfg['loss']} loss, XOR-labelled 2D data"),
        C.claim("slides-two-layer-margin:loss-1-over-k", "the loss falls like 1/k", abs(slope + 1) <= tol.rate_tol,
                f"log-log slope of the loss over the last decade {slope:.3f}", f"held if within {tol.rate_tol} of -1"),
        C.claim("slides-two-layer-margin:norms-log-k", "layer norms grow like log k",
                all(s > 0 and r2 >= tol.r2_min for s, r2 in fits),
                "; ".join(f"layer {k}: slope {s:.3f}, R^2 {r2:.4f}" for k, (s, r2) in zip((1, 2), fits)),
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
    return table, out, draw


def balance(cfg, tol, seed):
    rng = np.random.default_rng(seed)
    X, y = linear.separable_blobs(cfg["n"], cfg["d"], cfg["margin"], rng)
    torch.set_num_threads(1)
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
    return table, out, draw


# --- deep vs shallow -------------------------------------------------------------------


def params_to_reach(frame: pd.DataFrame, error: float) -> float:
    ok = frame[frame["test_mse"] <= error]
    return float(ok["params"].min()) if len(ok) else float("inf")


def deep_vs_shallow(cfg, tol, seed):
    torch.set_num_threads(1)
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
    return table, out, draw


@dataclass(frozen=True)
class SynthDef:
    id: str
    source: str
    what: str
    run: Callable


SYNTHETIC: dict[str, SynthDef] = {d.id: d for d in [
    SynthDef("t3-langevin-dims", "memo073 Fig 7", "GDL on two equal-depth minima, one 2x flatter per dimension; "
             "histograms of w1 for D = 1..5", langevin_dims),
    SynthDef("t3-langevin-2d", "memo073 Figs 8, 9", "GDL on a degenerate and a non-degenerate minimum; slices of w1 "
             "as D grows", langevin_2d),
    SynthDef("t3-sgd-potential", "memo073 Fig 10, memo100 Fig 2", "SGD (minibatch noise) and SGDL on the 2D potential",
             sgd_potential),
    SynthDef("t3-minnorm", "memo073 section 9.6", "GD and SGD on underdetermined least squares", minnorm),
    SynthDef("m100-linear-dynamics", "memo100 section 3.F; slides (Soudry et al.)", "GD on exponential and logistic "
             "loss, separable data: norm and angle to the SVM direction", linear_dynamics),
    SynthDef("m100-balance", "memo100 section 3.E", "deep homogeneous ReLU net, GD on exponential loss: layer norms",
             balance),
    SynthDef("slides-nonseparable", "slides", "GD with logistic vs exponential loss on non-separable 2D data",
             nonseparable),
    SynthDef("slides-two-layer-margin", "slides", "2-layer ReLU net on 2D data: loss, layer norms, normalized margin",
             two_layer_margin),
    SynthDef("m100-deep-vs-shallow", "memo100 Fig 1, Theorems 1-2; slides", "shallow vs binary-tree nets on a "
             "hierarchically compositional function: test error vs parameters", deep_vs_shallow),
]}


def report(tid: str, cfg: dict, claims_cfg: dict, seed: int, outdir: Path) -> pd.DataFrame:
    """Run one synthetic target and write figure, table and claim rows under ``outdir``."""
    target = SYNTHETIC[tid]
    table, rows, draw = target.run(cfg, C.Tolerances.from_config(claims_cfg), seed)
    outdir = Path(outdir)
    caption = f"{tid}: {target.what} ({target.source}). Synthetic, no data set; seed {seed}."
    draw(caption, outdir / "figure.png", outdir / "figure.pdf")
    table.insert(0, "target", tid)
    write_table(table, outdir / "table.csv", outdir / "table.md", caption)
    frame = pd.DataFrame(rows)[["id", "claim", "held", "measured", "detail"]]
    write_csv(outdir / "claims.csv", frame)
    return frame
