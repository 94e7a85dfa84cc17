"""Synthetic targets on linear models: minimum-norm least squares (memo073 section 9.6),
the implicit bias of exponential-type losses on separable data (memo100 section 3.F) and
logistic vs exponential loss on non-separable data (slides).

Each target computes a small measurements dict; a pure function ``*_claims(m, cfg, tol)``
turns it into claim rows, so tests can feed it measurements that break each claim."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import claims as C
from .. import fits, plots
from . import Inputs, Outcome, Target

from ..synthetic import linear

# The registry's entries (deeptheory.targets): plain literals, read without importing this module.
TARGETS = [
    Target(
        id="t3-minnorm",
        source="memo073 section 9.6",
        what="GD and SGD on underdetermined least squares",
        claims="from zero init GD and SGD converge to the pseudoinverse solution; from a nonzero init the gap equals "
               "the init's null-space part",
        builder="minnorm",
    ),
    Target(
        id="m100-linear-dynamics",
        source="memo100 section 3.F; slides (Soudry et al.)",
        what="GD on exponential and logistic loss, separable data: norm and angle to the SVM direction",
        claims="\\|w\\| grows like log t with slope \\|w_svm\\|; the direction converges to the hard-margin SVM "
               "direction; weight normalization converges faster (on data with a single support vector)",
        builder="linear_dynamics",
    ),
    Target(
        id="slides-nonseparable",
        source='slides "Nonseparable classification?"',
        what="GD with logistic vs exponential loss on non-separable 2D data",
        claims="logistic and exponential loss give different solutions",
        builder="nonseparable",
    ),
]


# --- t3-minnorm ---------------------------------------------------------------------------

def minnorm_claims(m: dict, cfg: dict, tol) -> list[dict]:
    """``m``: rel_zero {method: |w - X^+ y| / |X^+ y| from zero init}; null_part |P_null w0|;
    gap {method: |w - X^+ y| from w0}; rel_pred {method: |w - (X^+ y + P_null w0)| / |X^+ y + P_null w0|}."""
    zero_ok = all(v <= tol.minnorm_tol for v in m["rel_zero"].values())
    gap_rel = {k: abs(g - m["null_part"]) / m["null_part"] for k, g in m["gap"].items()}
    null_ok = all(v <= tol.minnorm_tol for v in gap_rel.values()) and all(v <= tol.minnorm_tol for v in m["rel_pred"].values())
    return [
        C.claim("t3-minnorm:zero-init-pinv", "from zero init GD and SGD converge to the pseudoinverse solution", zero_ok,
                "relative distance to X^+ y: " + ", ".join(f"{k} {v:.2e}" for k, v in m["rel_zero"].items()),
                f"held if every run is within {tol.minnorm_tol:g} (relative) of X^+ y; fails if a run stops elsewhere "
                f"(not converged, or a solution with a null-space part); n = {cfg['n']} equations, d = {cfg['d']} unknowns"),
        C.claim("t3-minnorm:gap-is-null-part",
                "from a nonzero init the gap to the pseudoinverse solution equals the init's null-space part", null_ok,
                f"gap vs |P_null w0| = {m['null_part']:.6f}: " + ", ".join(f"{k} {g:.6f}" for k, g in m["gap"].items())
                + "; relative distance to X^+ y + P_null w0: " + ", ".join(f"{k} {v:.2e}" for k, v in m["rel_pred"].items()),
                f"held if |gap - |P_null w0|| / |P_null w0| and the relative distance to X^+ y + P_null w0 are both "
                f"<= {tol.minnorm_tol:g} for GD and SGD; fails if (S)GD changes the null-space part of the init"),
    ]


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
    m = {"rel_zero": dict(zip(zero["method"], zero["gap_to_pinv"] / np.linalg.norm(w_pinv))),
         "null_part": float(np.linalg.norm(null)),
         "gap": dict(zip(nonzero["method"], nonzero["gap_to_pinv"])),
         "rel_pred": dict(zip(nonzero["method"], nonzero["rel_error_to_prediction"]))}

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
    return Outcome(table, minnorm_claims(m, cfg, tol), draw)


# --- m100-linear-dynamics -----------------------------------------------------------------

def decay_rate(t, angle) -> float:
    """-d log(angle) / d log t, the least-squares slope over the points given."""
    return -fits.line(np.log(np.asarray(t, float)), np.log(np.asarray(angle, float)))[0]


def dynamics_measurements(table: pd.DataFrame, svm_norm: float, t_from: float, windows: int,
                          support_vectors: int | None = None) -> dict:
    """Per loss, over the late window t >= t_from. On the data set ``blobs`` (plain GD): the
    slope of |w| on log t over the whole window and over ``windows`` successive windows of
    equal width in log t, angle x log t at the window's ends, the angles. On the data set
    ``one support vector`` (whose hard-margin SVM has ``support_vectors`` support vectors):
    the fitted angle decay rates with and without weight normalization."""
    out = {}
    for loss, g in table.groupby("loss"):
        late = g[g["t"] >= t_from]
        blobs, single = late[late["data"] == "blobs"], late[late["data"] == "one support vector"]
        pl = blobs[blobs["param"] == "plain"]
        spl, swn = single[single["param"] == "plain"], single[single["param"] == "weight norm"]
        slope, _, r2 = fits.line(np.log(pl["t"]), pl["norm"])
        local, edges = fits.window_slopes(pl["t"], pl["norm"], windows)
        alt = (pl["angle_to_svm"] * np.log(pl["t"])).to_numpy()
        out[loss] = {"svm_norm": svm_norm, "slope": slope, "r2": r2, "window_slopes": local,
                     "window_edges": [int(round(e)) for e in edges], "t_first": int(pl["t"].iloc[0]),
                     "t_last": int(pl["t"].iloc[-1]), "angle_logt_first": float(alt[0]), "angle_logt_last": float(alt[-1]),
                     "angles": pl["angle_to_svm"].tolist(), "support_vectors": support_vectors,
                     "rate_plain": decay_rate(spl["t"], spl["angle_to_svm"]),
                     "rate_wn": decay_rate(swn["t"], swn["angle_to_svm"]),
                     "angle_plain_last": float(spl["angle_to_svm"].iloc[-1]),
                     "angle_wn_last": float(swn["angle_to_svm"].iloc[-1])}
    return out


def slope_claim(v: dict, loss: str, tol) -> dict:
    """|w| against log t: the local slope over successive windows of the late window must
    approach |w_svm|. Held if the last window's slope is within ``svm_slope_rtol`` of it;
    otherwise inconclusive (still falling at its cap) while the distance shrinks from every
    window to the next, refuted if it does not (a slope that levels off elsewhere or moves
    away, as for sqrt(log t) or t^a)."""
    target, local = v["svm_norm"], v["window_slopes"]
    dist = [abs(s - target) / target for s in local]
    approaching = all(b < a for a, b in zip(dist[:-1], dist[1:]))
    held = dist[-1] <= tol.svm_slope_rtol
    edges = v["window_edges"]
    per_window = "; ".join(f"t in [{a}, {b}]: {s:.3f} ({d:.1%} off)" for a, b, s, d in zip(edges[:-1], edges[1:], local, dist))
    return C.claim(
        f"m100-linear-dynamics:{loss}-norm-slope-svm", f"{loss} loss: |w| grows like |w_svm| log t",
        held, f"local slope of |w| on log t by window: {per_window}; |w_svm| {target:.3f}; one line over "
              f"[{v['t_first']}, {v['t_last']}]: slope {v['slope']:.3f}, R^2 {v['r2']:.4f}",
        f"w(t) = w_svm log t + bounded (Soudry et al., memo100 section 3.F) makes the slope of |w| on log t tend to "
        f"|w_svm| (hard-margin SVM from a QP, margin 1) only as t grows: the bounded part bends |w| early, so one line "
        f"over a window not yet asymptotic is biased. Judged by the slope in each of {len(local)} successive windows "
        f"of equal width in log t: held if the last window's is within {tol.svm_slope_rtol:.0%} of |w_svm|; "
        f"inconclusive (not converged) if it is not but the distance shrinks from each window to the next; fails "
        f"if the distance does not shrink (sqrt(log t), t^a, or log t at another rate)",
        inconclusive=C.NOT_CONVERGED if not held and approaching else None)


def dynamics_claims(m: dict, cfg: dict, tol) -> list[dict]:
    out = []
    for loss, v in m.items():
        window = f"late window t in [{v['t_first']}, {v['t_last']}]"
        out.append(slope_claim(v, loss, tol))
        growth = v["angle_logt_last"] / v["angle_logt_first"] - 1
        out.append(C.claim(
            f"m100-linear-dynamics:{loss}-angle-1-over-log-t", f"{loss} loss: the angle to w_svm falls like 1 / log t",
            growth <= tol.angle_logt_growth,
            f"angle x log t {v['angle_logt_first']:.4f} at t = {v['t_first']}, {v['angle_logt_last']:.4f} at t = {v['t_last']} "
            f"(change {growth:+.1%})",
            f"held if angle x log t grows by at most {tol.angle_logt_growth:.0%} over the {window}; fails if the angle "
            f"falls slower than 1 / log t (e.g. 1 / sqrt(log t)) or not at all"))
        angles = v["angles"]
        held, worst = C.trend(np.arange(len(angles)), angles, tol.angle_rise_rad, "falls")
        out.append(C.claim(
            f"m100-linear-dynamics:{loss}-direction-to-svm", f"{loss} loss: the direction converges to the hard-margin SVM direction",
            held, f"angle to w_svm {angles[0]:.4f} rad at t = {v['t_first']}, {angles[-1]:.4f} at t = {v['t_last']}",
            f"held if the angle falls over the {window} with no rise above {tol.angle_rise_rad:g} rad between recorded "
            f"steps (worst {worst:+.5f}); fails if it rises or stalls"))
        sv = v.get("support_vectors")
        faster = v["rate_wn"] >= tol.wn_rate_factor * v["rate_plain"] and v["rate_wn"] > 0
        out.append(C.claim(
            f"m100-linear-dynamics:{loss}-weight-norm-faster", f"{loss} loss: weight normalization converges faster",
            faster, f"data with {sv} support vector(s): fitted decay rate -d log(angle) / d log t: weight-normalized "
                    f"{v['rate_wn']:.3f}, plain {v['rate_plain']:.3f}; final angles {v['angle_wn_last']:.4f} vs "
                    f"{v['angle_plain_last']:.4f} rad",
            f"memo100 section 3.F derives the rates for a single support vector (plain GD 1 / log t, weight normalization "
            f"t^(-log(t) / 2)), so the claim is judged on a data set whose hard-margin SVM has one; held if the "
            f"weight-normalized rate over the {window} is >= {tol.wn_rate_factor:g}x plain GD's; fails if it is slower, "
            f"equal or only marginally faster; inconclusive (outside the regime) on data with more than one support vector",
            inconclusive=C.OUT_OF_REGIME if sv != 1 else None))
    return out


def linear_dynamics(inp: Inputs) -> Outcome:
    cfg, tol, seed = inp.cfg, inp.tol, inp.seed
    rng = np.random.default_rng(seed)
    X, y = linear.separable_blobs(cfg["n"], cfg["d"], cfg["margin"], rng)
    w_svm = linear.hard_margin_svm(X, y)
    # memo100's weight-normalization argument assumes one support vector: a second data set where it holds
    X1, y1 = linear.separable_blobs(cfg["n"], cfg["d"], cfg["margin"], rng, single_support=True)
    w_svm1 = linear.hard_margin_svm(X1, y1)
    support_vectors = linear.support_vectors(X1, y1, w_svm1)
    steps = cfg["steps"]
    rows = []
    for data, (Xd, yd, wd), params in [("blobs", (X, y, w_svm), (False,)),
                                       ("one support vector", (X1, y1, w_svm1), (False, True))]:
        for loss in ("exp", "logistic"):
            for wn in params:
                _, trace = linear.gd_linear(Xd, yd, loss, steps, cfg["eta"], weight_norm=wn)
                rows += [{"data": data, "loss": loss, "param": "weight norm" if wn else "plain", "t": t,
                          "norm": np.linalg.norm(w), "angle_to_svm": linear.angle(w, wd), "train_loss": v}
                         for t, w, v in trace]
    table = pd.DataFrame(rows)
    m = dynamics_measurements(table, float(np.linalg.norm(w_svm)), cfg["late_from"] * steps, cfg["windows"],
                              support_vectors)

    def draw(caption, png, pdf):
        fig, axes = plots.panels(3, width=4.6)
        t = np.geomspace(1, steps, 50)
        for (data, loss, param), g in table.groupby(["data", "loss", "param"]):
            if data == "blobs":
                axes[0].plot(g["t"], g["norm"], label=f"{loss}, {param}")
                axes[1].plot(g["t"], g["angle_to_svm"], label=f"{loss}, {param}")
            else:
                axes[2].plot(g["t"], g["angle_to_svm"], label=f"{loss}, {param}")
        tail = table[(table["data"] == "blobs") & (table["loss"] == "exp") & (table["param"] == "plain")].iloc[-1]
        axes[0].plot(t, tail["norm"] + np.linalg.norm(w_svm) * np.log(t / steps), ls=":", color="grey", label="slope |w_svm|")
        for edge in m["exp"]["window_edges"][1:-1]:
            axes[0].axvline(edge, color="grey", lw=0.4, ls=":")
        axes[0].set_ylabel("|w|")
        axes[1].set_ylabel("angle to SVM direction (rad)")
        axes[2].set_ylabel("angle to SVM direction (rad), one support vector")
        for ax in axes[1:]:
            ax.set_yscale("log")
        for ax in axes:
            ax.set_xscale("log")
            ax.axvline(cfg["late_from"] * steps, color="grey", lw=0.6)
            ax.set_xlabel("GD step t")
            ax.legend(fontsize=7)
        plots.save(fig, caption, png, pdf)
    return Outcome(table, dynamics_claims(m, cfg, tol), draw, extra={"measurements": {
        k: {kk: vv for kk, vv in v.items() if kk != "angles"} for k, v in m.items()}})


# --- slides-nonseparable ------------------------------------------------------------------

def nonseparable_claims(m: dict, cfg: dict, tol) -> list[dict]:
    """``m``: angle_deg between the two losses' solutions; control_deg {loss: angle between
    runs of that loss from zero and from a random init}; grad_norm the largest final
    gradient norm of all four runs; norms {loss: |w|}."""
    converged = m["grad_norm"] < tol.gradient_converged
    worst_control = max(m["control_deg"].values())
    control_ok = converged and worst_control <= tol.solution_control_deg
    need = tol.solution_control_deg + tol.solution_angle_deg
    controls = ", ".join(f"{k} {v:.2e} deg" for k, v in m["control_deg"].items())
    return [
        C.claim("slides-nonseparable:same-loss-control", "GD on one loss from two inits reaches one solution", control_ok,
                f"angle between runs from zero and from a random init: {controls}; largest gradient norm {m['grad_norm']:.1e}",
                f"held if all runs converged (gradient norm < {tol.gradient_converged:g}) and each loss's two runs agree "
                f"within {tol.solution_control_deg:g} deg; fails if the minimizer found depends on the init or GD stopped early"),
        C.claim("slides-nonseparable:losses-differ", "logistic and exponential loss give different solutions",
                control_ok and m["angle_deg"] > need,
                f"angle between the solutions {m['angle_deg']:.3f} deg; norms "
                + " vs ".join(f"{k} {v:.3f}" for k, v in m["norms"].items()),
                f"held if the control holds and the angle exceeds the control angle {tol.solution_control_deg:g} deg by "
                f"{tol.solution_angle_deg:g} deg (> {need:g} deg); fails if the two losses' minimizers agree that closely; "
                f"inconclusive if the control fails (GD stopped early, or its solution depends on the init)",
                inconclusive=None if control_ok else (C.NOT_CONVERGED if m["grad_norm"] >= tol.gradient_converged
                                                      else C.UNTESTABLE)),
    ]


def nonseparable(inp: Inputs) -> Outcome:
    cfg, tol, seed = inp.cfg, inp.tol, inp.seed
    rng = np.random.default_rng(seed)
    X, y = linear.nonseparable_blobs(cfg["n"], rng)
    w_rand = cfg["init_scale"] * rng.standard_normal(X.shape[1])
    sol, rows = {}, []
    for loss in ("logistic", "exp"):
        for init, w0 in [("zero", None), ("random", w_rand)]:
            w, _ = linear.gd_linear(X, y, loss, cfg["steps"], cfg["eta"], w0=w0)
            _, dm = linear.loss_grad(loss, y * (X @ w))
            sol[loss, init] = w
            rows.append({"loss": loss, "init": init, "w1": w[0], "w2": w[1], "bias": w[2], "norm": np.linalg.norm(w),
                         "grad_norm": float(np.linalg.norm(X.T @ (dm * y))), "train_err": float(((X @ w) * y <= 0).mean())})
    table = pd.DataFrame(rows)
    deg = lambda u, v: float(np.degrees(linear.angle(u, v)))  # noqa: E731
    m = {"angle_deg": deg(sol["logistic", "zero"], sol["exp", "zero"]),
         "control_deg": {loss: deg(sol[loss, "zero"], sol[loss, "random"]) for loss in ("logistic", "exp")},
         "grad_norm": float(table["grad_norm"].max()),
         "norms": {loss: float(np.linalg.norm(sol[loss, "zero"])) for loss in ("logistic", "exp")}}

    def draw(caption, png, pdf):
        fig, axes = plots.panels(1, width=5.0)
        ax = axes[0]
        ax.scatter(X[:, 0], X[:, 1], c=y, cmap="coolwarm", s=10)
        xs = np.linspace(X[:, 0].min(), X[:, 0].max(), 10)
        for (loss, init), w in sol.items():
            ax.plot(xs, -(w[0] * xs + w[2]) / w[1], ls="-" if init == "zero" else ":", label=f"{loss} loss, {init} init")
        ax.set_ylim(X[:, 1].min(), X[:, 1].max())
        ax.legend(fontsize=7)
        plots.save(fig, caption, png, pdf)
    return Outcome(table, nonseparable_claims(m, cfg, tol), draw)
