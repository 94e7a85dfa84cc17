"""Synthetic targets on linear models: minimum-norm least squares (memo073 section 9.6),
the implicit bias of exponential-type losses on separable data (memo100 section 3.F) and
logistic vs exponential loss on non-separable data (slides)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import claims as C
from .. import fits, plots
from . import Inputs, Outcome

from ..synthetic import linear


def minnorm(inp: Inputs) -> Outcome:
    cfg, tol, seed = inp.cfg, inp.tol, inp.seed
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
    return Outcome(table, out, draw)


def linear_dynamics(inp: Inputs) -> Outcome:
    cfg, tol, seed = inp.cfg, inp.tol, inp.seed
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
        slope, r2 = fits.log_fit(plain["t"], plain["norm"])
        out.append(C.claim(f"m100-linear-dynamics:{loss}-norm-log-t", f"{loss} loss: |w| grows like log t",
                           slope > 0 and r2 >= tol.r2_min, f"slope {slope:.3f} per unit log t, R^2 {r2:.4f}",
                           f"linear fit of |w| on log t for t in [{steps // 1000}, {steps}]; held if slope > 0 and R^2 >= {tol.r2_min}"))
        held, worst = C.trend(plain["t"], plain["angle_to_svm"], tol.angle_rise_rad, "falls")
        out.append(C.claim(f"m100-linear-dynamics:{loss}-direction-to-svm",
                           f"{loss} loss: the direction converges to the hard-margin SVM direction", held,
                           f"angle to SVM {plain['angle_to_svm'].iloc[0]:.4f} rad at t = {plain['t'].iloc[0]}, "
                           f"{plain['angle_to_svm'].iloc[-1]:.4f} at t = {steps}",
                           f"falls over t >= {steps // 1000}: tolerance {tol.angle_rise_rad:g} rad, worst rise {worst:+.5f}; SVM from a QP (SLSQP)"))
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
    return Outcome(table, out, draw)


def nonseparable(inp: Inputs) -> Outcome:
    cfg, tol, seed = inp.cfg, inp.tol, inp.seed
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
    converged = bool((table["grad_norm"] < tol.gradient_converged).all())
    out = [C.claim("slides-nonseparable:losses-differ", "logistic and exponential loss give different solutions",
                   converged and deg > tol.solution_angle_deg,
                   f"angle between the solutions {deg:.2f} deg; norms {table['norm'].iloc[0]:.3f} vs {table['norm'].iloc[1]:.3f}",
                   f"held if both converged (gradient norms {table['grad_norm'].max():.1e} < {tol.gradient_converged:g}) and the angle "
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
    return Outcome(table, out, draw)


BUILD = {
    "t3-minnorm": minnorm,
    "m100-linear-dynamics": linear_dynamics,
    "slides-nonseparable": nonseparable,
}
