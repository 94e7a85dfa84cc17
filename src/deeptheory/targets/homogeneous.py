"""Synthetic targets on homogeneous ReLU nets under GD: the two-layer net of the slides and
the deep net of memo100 section 3.E (layer-norm balance, normalized margin).

Each target computes a small measurements dict; a pure function ``*_claims(m, cfg, tol)``
turns it into claim rows, so tests can feed it measurements that break each claim."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import claims as C
from .. import fits, plots
from . import Inputs, Outcome, Target

from ..synthetic import linear, nets

# The registry's entries (deeptheory.targets): plain literals, read without importing this module.
TARGETS = [
    Target(
        id="m100-balance",
        source="memo100 section 3.E",
        what="deep homogeneous ReLU net, GD on exponential loss: layer norms",
        claims="differences of squared layer norms stay constant under gradient descent; the normalized margin "
               "increases; the product of the layer norms grows faster than log t and each layer slower than a "
               "one-layer net's norm (read in the asymptotic regime only)",
        builder="balance",
    ),
    Target(
        id="slides-two-layer-margin",
        source='slides "Deep Networks makes it separable"',
        what="2-layer ReLU net on 2D data: loss, layer norms, normalized margin",
        claims="the data become separable; the loss falls like 1/k; each layer norm grows like a log k + b (the "
               "slides), the product of the norms like a log k + b, each balanced layer like (a log k + b)^(1/2); "
               "the normalized margin levels off",
        builder="two_layer_margin",
    ),
]


# --- slides-two-layer-margin -------------------------------------------------------------

def two_layer_measurements(table: pd.DataFrame, steps: int, L: int, windows: int) -> dict:
    """Separation, the loss's log-log slope over the last decade, the normalized margin over
    it, and, over the late window k >= steps / 100, how each layer norm |W_k|, the product of
    the norms and each |W_k|^L follow a log k + b (``fits.log_affine`` over ``windows``)."""
    fit = table[table["train_err"] == 0]
    last_decade = table[table["step"] >= steps / 10]
    window = table[table["step"] >= steps / 100]
    norms = {f"|W{k}|": window[f"norm_{k}"] for k in range(1, L + 1)}
    norms["product"] = np.prod([window[f"norm_{k}"] for k in range(1, L + 1)], axis=0)
    norms.update({f"|W{k}|^{L}": window[f"norm_{k}"] ** L for k in range(1, L + 1)})
    nm = last_decade["normalized_margin"]
    return {"L": L, "first_separated": int(fit["step"].min()) if len(fit) else None,
            "loss_slope": float(np.polyfit(np.log(last_decade["step"]), np.log(last_decade["loss"]), 1)[0]),
            "affine": {k: fits.log_affine(window["step"], v, windows) for k, v in norms.items()},
            "k_from": int(window["step"].iloc[0]), "k_to": int(window["step"].iloc[-1]),
            "nm_first": float(nm.iloc[0]), "nm_last": float(nm.iloc[-1]), "nm_from": int(last_decade["step"].iloc[0])}


def affine_claim(cid: str, text: str, keys: list[str], m: dict, tol, source: str) -> dict:
    """Each quantity in ``keys`` grows like a log k + b over the late window, read through the
    exponent p of c (log k - u0)^p fitted in successive windows (``fits.log_affine``; 1 for
    the affine law whatever b). Held if, for every one, the last window's p is within
    ``norm_exponent_tol`` of 1 and the line on log k over the whole window has R^2 >=
    ``log_affine_min_r2``. Inconclusive (not converged) if the data separate only inside the
    window, or where a quantity's last p is within tolerance but an early bend pulls R^2
    down, or its p is beyond tolerance but moved toward 1 from the previous window by at least
    the distance still to go (one more window at that pace reaches the tolerance). Refuted
    otherwise: p stays off 1 ((log k)^(1/2), a power of k, a level)."""
    sep, et = m["first_separated"], tol.norm_exponent_tol
    parts, states = [], []
    for key in keys:
        q = m["affine"][key]
        p = q["exponents"]
        off = abs(p[-1] - 1)
        moved = abs(p[-2] - 1) - off if len(p) > 1 else 0.0
        if off <= et:
            states.append("held" if q["r2"] >= tol.log_affine_min_r2 else "approaching")
        else:
            states.append("approaching" if moved > 0 and off - et <= moved else "refuted")
        parts.append(f"{key}: {q['slope']:.3f} log k {q['intercept']:+.3f} (R^2 {q['r2']:.4f}); p by window "
                     + ", ".join(f"{x:.3f}" for x in p))
    held = all(st == "held" for st in states)
    reason = None
    if sep is None or sep > m["k_from"] or (not held and "refuted" not in states):
        reason = C.NOT_CONVERGED
    edges = m["affine"][keys[0]]["window_edges"]
    return C.claim(
        cid, text, held, "; ".join(parts),
        f"{source} Over k in [{m['k_from']}, {m['k_to']}]: the line on log k, and as its residual trend the exponent p "
        f"of c (log k - u0)^p fitted in {len(edges) - 1} successive windows of equal width in log k (edges "
        + ", ".join(f"{x:.0f}" for x in edges) + "): p = 1 is the affine law whatever its intercept, p = 1/2 "
        f"sqrt(a log k + b). Held if for each the last window's p is within {et:g} of 1 and R^2 >= "
        f"{tol.log_affine_min_r2:g}; inconclusive (not converged) if p moved toward 1 by at least the distance still "
        f"to go, if only R^2 falls short, or if the data separate only inside the window; fails if p stays off 1 by "
        f"more than {et:g} ((log k)^(1/2), a power of k, a level)",
        inconclusive=reason)


def two_layer_claims(m: dict, cfg: dict, tol) -> list[dict]:
    L = m["L"]
    layers = [f"|W{k}|" for k in range(1, L + 1)]
    powers = [f"|W{k}|^{L}" for k in range(1, L + 1)]
    sep = m["first_separated"]
    change = abs(m["nm_last"] - m["nm_first"]) / abs(m["nm_last"]) if m["nm_last"] else float("inf")
    return [
        C.claim("slides-two-layer-margin:separable", "the data become separable", sep is not None,
                f"train error 0 from step {sep}" if sep is not None else "never separated",
                f"held if train error reaches 0 within {cfg['steps']} steps, fails if it never does; 2-layer ReLU net without biases, q = {cfg['q']}, "
                f"{cfg['loss']} loss, XOR-labelled 2D data"),
        C.claim("slides-two-layer-margin:loss-1-over-k", "the loss falls like 1/k", abs(m["loss_slope"] + 1) <= tol.rate_tol,
                f"log-log slope of the loss over the last decade {m['loss_slope']:.3f}",
                f"held if within {tol.rate_tol} of -1; fails for a loss falling like 1/sqrt(k), 1/k^2 or levelling off"),
        affine_claim("slides-two-layer-margin:layers-log-k", "each layer norm grows like a log k + b (the slides)",
                     layers, m, tol, "The slides: \"Both W1 and W2 grow to infinity (log k)\": each |W_k| affine in log k."),
        affine_claim("slides-two-layer-margin:product-log-k", "the product of layer norms grows like a log k + b",
                     ["product"], m, tol,
                     "The slides' loss ~ 1/k makes the margin min_i y_i f(x_i) = log k + O(1) (exponential tail), and their "
                     "stable normalized margin = margin / product of norms makes the product affine in log k too."),
        affine_claim("slides-two-layer-margin:layers-root-log-k",
                     f"each balanced layer norm grows like (a log k + b)^(1/{L})", powers, m, tol,
                     f"Balanced layers (memo100 section 3.E: every |W_k|^2 grows at the same rate) share the product's "
                     f"a log k + b, so each |W_k|^{L} is affine in log k."),
        C.claim("slides-two-layer-margin:margin-levels-off", "the normalized margin levels off",
                m["nm_last"] > 0 and change <= tol.level_tol,
                f"normalized margin {m['nm_first']:.4f} at k = {m['nm_from']}, {m['nm_last']:.4f} at k = {m['k_to']}",
                f"held if positive and changing by at most {tol.level_tol:.0%} over the last decade; fails if it still "
                f"climbs or falls, or is not positive"),
    ]


def two_layer_margin(inp: Inputs) -> Outcome:
    cfg, tol, seed = inp.cfg, inp.tol, inp.seed
    X, y = nets.xor_data(cfg["n"], np.random.default_rng(seed))
    table = pd.DataFrame(nets.train_homogeneous(X, y, [2, cfg["q"], 1], cfg["loss"], cfg["steps"], cfg["eta"], seed))
    table["norm_1"], table["norm_2"] = np.sqrt(table["sq_norm_1"]), np.sqrt(table["sq_norm_2"])
    steps = cfg["steps"]
    m = two_layer_measurements(table, steps, 2, cfg["windows"])

    def draw(caption, png, pdf):
        fig, axes = plots.panels(3, width=3.6)
        k = table["step"].clip(lower=1)
        axes[0].loglog(k, table["loss"], label="loss")
        axes[0].loglog(k, table["loss"].iloc[-1] * steps / k, ls=":", color="grey", label="1/k")
        axes[1].plot(k, table["norm_1"], label="|W1|")
        axes[1].plot(k, table["norm_2"], label="|w2|")
        axes[1].plot(k, table["norm_1"] * table["norm_2"], label="|W1| |w2|")
        axes[1].set_xscale("log")
        axes[2].plot(k, table["normalized_margin"])
        axes[2].set_xscale("log")
        axes[2].set_ylabel("normalized margin")
        for ax in axes:
            ax.set_xlabel("GD step k")
        axes[0].legend(fontsize=7)
        axes[1].legend(fontsize=7)
        plots.save(fig, caption, png, pdf)
    return Outcome(table, two_layer_claims(m, cfg, tol), draw, extra={"measurements": m})


# --- m100-balance ---------------------------------------------------------------------------

def balance_measurements(table: pd.DataFrame, L: int) -> dict:
    """Differences of squared layer norms at the start and their largest drift, the growth
    of each |W_k|^2, and the normalized margin when the data first separate and at the end."""
    sq = table[[f"sq_norm_{k}" for k in range(1, L + 1)]].to_numpy()
    diffs = sq[:, :-1] - sq[:, 1:]
    sep = table[table["train_err"] == 0]
    after = np.asarray(table["step"]) >= 1
    finite = bool(np.isfinite(sq).all() and np.isfinite(table["loss"]).all())
    return {"diverged": not finite, "loss_start": float(table["loss"].iloc[0]),
            "diffs_start": diffs[0].tolist(), "diffs_end": diffs[-1].tolist(),
            "drift": float(np.abs(diffs - diffs[0]).max()), "growth": (sq[-1] - sq[0]).tolist(),
            "drift_after_step_1": float(np.abs(diffs[after] - diffs[after][0]).max()) if after.any() else float("nan"),
            "nm_separated": float(sep["normalized_margin"].iloc[0]) if len(sep) else None,
            "nm_end": float(table["normalized_margin"].iloc[-1])}


def growth_measurements(table: pd.DataFrame, L: int, late_from: float, windows: int) -> dict:
    """How the norms grow against log k over the late window k >= ``late_from`` x the last
    step: the exponent p of c (log k - u0)^p (``fits.log_affine``, in ``windows`` successive
    windows) of the product of the layer norms and of each layer norm (p = 1: logarithmic
    growth whatever the unit of t, p > 1 faster, p < 1 slower); when the data first separate;
    and the relative change of the normalized margin over the window (the direction still
    moving: not yet the asymptotic regime)."""
    norms = np.sqrt(table[[f"sq_norm_{k}" for k in range(1, L + 1)]].to_numpy())
    late = np.asarray(table["step"]) >= late_from * table["step"].max()
    k = table["step"][late]
    sep = table[table["train_err"] == 0]
    nm = table["normalized_margin"][late]
    finite = bool(np.isfinite(norms).all() and np.isfinite(table["loss"]).all())
    exps = lambda v: fits.log_affine(k, v, windows)["exponents"] if finite else [float("nan")] * windows  # noqa: E731
    return {"diverged": not finite, "first_separated": int(sep["step"].min()) if len(sep) else None,
            "k_from": int(k.iloc[0]), "k_to": int(k.iloc[-1]),
            "nm_change": float(abs(nm.iloc[-1] - nm.iloc[0]) / abs(nm.iloc[-1])) if nm.iloc[-1] else float("inf"),
            "p_product": exps(norms[late].prod(1)), "p_layers": [exps(norms[late][:, j]) for j in range(L)]}


def _asymptotic(g: dict, name: str, tol) -> tuple[str | None, str]:
    """Why a run's late window is not memo100's asymptotic regime (None if it is): it left
    the floats, the data separate only inside the window or never, or the normalized margin
    still moves by more than ``level_tol`` over it (the direction V_k still turns, so the
    norms' growth mixes that turning with the growth of rho the memo's one-support-vector
    dynamics describes)."""
    if g["diverged"]:
        return C.DIVERGED, f"the {name} run diverged"
    if g["first_separated"] is None or g["first_separated"] > g["k_from"]:
        return C.NOT_CONVERGED, (f"the {name} run separates the data only from step {g['first_separated']}, not "
                                 f"before the late window k >= {g['k_from']}")
    if g["nm_change"] > tol.level_tol:
        return C.NOT_CONVERGED, (f"the {name} run's normalized margin still changes by {g['nm_change']:.1%} over the "
                                 f"late window (> level_tol {tol.level_tol:.0%}): not yet the asymptotic regime")
    return None, f"{name} run in the asymptotic regime (normalized margin within {g['nm_change']:.1%})"


def _ps(xs) -> str:
    return ", ".join(f"{x:.3f}" for x in xs)


def growth_claims(m: dict, cfg: dict, tol) -> list[dict]:
    """memo100 section 3.E: "the product of weights at each layer diverges faster than
    logarithmically, but each individual layer diverges slower than in the 1-layer case"
    (rho ~ log t). ``m["balanced"]["growth_rate"]`` and ``m["one_layer"]["growth_rate"]``:
    :func:`growth_measurements` of the balanced deep run and of a one-layer (linear) net on
    the same data, loss, step and steps. Read through the last late window's exponent p of
    c (log k - u0)^p, free of the unit and origin of t; p within ``norm_exponent_tol`` of the
    compared value cannot be told from it over this range of log k (within noise)."""
    b, one = m["balanced"]["growth_rate"], m["one_layer"]["growth_rate"]
    et = tol.norm_exponent_tol
    p = b["p_product"][-1]
    why, regime = _asymptotic(b, "deep", tol)
    where = (f"over k in [{b['k_from']}, {b['k_to']}], in {len(b['p_product'])} windows of equal width in log k; "
             f"{regime}")
    faster = C.claim(
        "m100-balance:product-faster-than-log", "the product of the layer norms diverges faster than logarithmically",
        p > 1 + et, f"exponent p of prod_k |W_k| ~ c (log k - u0)^p by window: {_ps(b['p_product'])}; normalized "
                    f"margin change over the late window {b['nm_change']:.1%}",
        f"balanced run {where}. p = 1 is logarithmic growth (a log k + b, whatever the unit of t); held if the last "
        f"window's p > 1 + norm_exponent_tol = {1 + et:g}, fails if p < {1 - et:g} (slower than log k); within noise "
        f"between; inconclusive if the run is not in the asymptotic regime (data separated before the window, "
        f"normalized margin changing by at most level_tol = {tol.level_tol:g} over it) or diverged",
        inconclusive=why or C.verdict_of(p > 1 + et, p < 1 - et, C.WITHIN_NOISE))
    p1 = one["p_product"][-1]
    layers = [q[-1] for q in b["p_layers"]]
    why1, regime1 = _asymptotic(one, "one-layer", tol)
    slower = C.claim(
        "m100-balance:layers-slower-than-one-layer",
        "each layer norm diverges slower than the one-layer net's norm (rho ~ log t)",
        max(layers) < p1 - et,
        f"last-window exponent p of |W_k| by layer: {_ps(layers)}; of the one-layer net's |w|: {p1:.3f} (by window: "
        f"{_ps(one['p_product'])}); normalized margin change over the late window {b['nm_change']:.1%} (deep), "
        f"{one['nm_change']:.1%} (one layer)",
        f"the one-layer net: a linear predictor on the same data, exponential loss, step and steps; deep {where}; "
        f"{regime1}. Held if every layer's p is below the one-layer p by more than norm_exponent_tol = {et:g}, fails "
        f"if some layer's exceeds it by more; within noise between; inconclusive if either run is not in the "
        f"asymptotic regime or diverged",
        inconclusive=why or why1 or C.verdict_of(max(layers) < p1 - et, max(layers) > p1 + et, C.WITHIN_NOISE))
    return [faster, slower]


def balance_claims(m: dict, cfg: dict, tol) -> list[dict]:
    """``m``: {"balanced": measurements of a run from a balanced init, "unbalanced": of a
    run from the same init with layer 1 scaled by r and the last layer by 1 / r (the same
    network function, :func:`nets.unbalanced_scales`)}. A run whose loss or norms left the
    floats (``diverged``) makes the claims on it inconclusive; so does a balanced run that
    never separated the data, for the margin (the memo speaks of the separable regime)."""
    b, u = m["balanced"], m["unbalanced"]
    fmt = lambda xs: ", ".join(f"{x:.3f}" for x in xs)  # noqa: E731
    gb, gu = max(b["growth"]), max(u["growth"])
    imbalance = max(abs(x) for x in u["diffs_start"])
    nm0, nm1 = b["nm_separated"], b["nm_end"]
    r = cfg["unbalance"]
    same = (f"; loss at init {u['loss_start']:.6f}, the balanced run's {b['loss_start']:.6f} (the same function)"
            if "loss_start" in u and "loss_start" in b else "")
    return [
        C.claim("m100-balance:differences-constant",
                "from a balanced init the differences of squared layer norms stay constant (0): the norms grow at the same rate",
                b["drift"] <= tol.balance_tol * gb,
                f"largest drift of |W_k|^2 - |W_k+1|^2: {b['drift']:.4f}; growth of |W_k|^2 by layer: {fmt(b['growth'])}",
                f"held if the drift is <= {tol.balance_tol} x the largest growth; fails if one layer's norm grows faster "
                f"than another's; inconclusive if the run diverged; step {cfg['eta']}, {len(b['growth'])} layers",
                inconclusive=C.DIVERGED if b.get("diverged") else None),
        C.claim("m100-balance:unbalanced-init-kept",
                "balance is kept only if present at initialization: an unbalanced start keeps its nonzero differences",
                imbalance > tol.balance_tol * gu and u["drift"] <= tol.balance_tol * gu,
                f"layer 1 x{r:g}, last layer x1/{r:g} at init{same}: |W_k|^2 - |W_k+1|^2 at start {fmt(u['diffs_start'])}, "
                f"at the end {fmt(u['diffs_end'])}; drift {u['drift']:.4f} (from GD step 1 on: "
                f"{u.get('drift_after_step_1', float('nan')):.4f}); growth of |W_k|^2 by layer {fmt(u['growth'])}",
                f"the unbalanced run starts from the balanced run's net rescaled without changing its function, so only "
                f"the balance differs; held if the start is unbalanced (largest difference > {tol.balance_tol} x the largest "
                f"growth) and the differences drift by at most {tol.balance_tol} x that growth (memo100 section 3.E, "
                f"memo090: gradient flow keeps the differences of squared layer norms, so it keeps a balance present at "
                f"initialization and cannot create one); fails if GD balances the layers; inconclusive if the run diverged",
                inconclusive=C.DIVERGED if u.get("diverged") else None),
        C.claim("m100-balance:margin-rises", "the normalized margin increases", nm0 is not None and nm1 > nm0,
                f"normalized margin {nm0 if nm0 is None else f'{nm0:.4f}'} when the data first separate, {nm1:.4f} at the end",
                "margin / product of layer Frobenius norms, balanced run; held if higher at the end than at separation; "
                "fails if it falls; inconclusive if the data never separate within the steps (the memo's statement is "
                "about separating nets) or the run diverged",
                inconclusive=C.DIVERGED if b.get("diverged") else (C.NOT_CONVERGED if nm0 is None else None)),
    ]


def balance(inp: Inputs) -> Outcome:
    cfg, tol, seed = inp.cfg, inp.tol, inp.seed
    rng = np.random.default_rng(seed)
    X, y = linear.separable_blobs(cfg["n"], cfg["d"], cfg["margin"], rng)
    widths = [cfg["d"], *cfg["hidden"], 1]
    L = len(widths) - 1
    tables, m = {}, {}
    for run, scales in [("balanced", None), ("unbalanced", nets.unbalanced_scales(L, cfg["unbalance"]))]:
        t = pd.DataFrame(nets.train_homogeneous(X, y, widths, "exp", cfg["steps"], cfg["eta"], seed, init_scale=1.0,
                                                balanced=True, layer_scales=scales))
        m[run] = balance_measurements(t, L) | {"growth_rate": growth_measurements(t, L, cfg["late_from"],
                                                                                  cfg["windows"])}
        tables[run] = t.assign(init=run)
    # memo100's "1-layer case": a linear predictor (widths d -> 1) on the same data, loss, step and steps.
    t = pd.DataFrame(nets.train_homogeneous(X, y, [cfg["d"], 1], "exp", cfg["steps"], cfg["eta"], seed,
                                            init_scale=1.0, balanced=True))
    m["one_layer"] = {"growth_rate": growth_measurements(t, 1, cfg["late_from"], cfg["windows"])}
    tables["one_layer"] = t.assign(init="one layer")
    table = pd.concat(tables.values(), ignore_index=True)

    def draw(caption, png, pdf):
        fig, axes = plots.panels(4, width=4.0)
        deep = tables["balanced"]
        k = deep["step"].clip(lower=1)
        norms = np.sqrt(deep[[f"sq_norm_{j}" for j in range(1, L + 1)]].to_numpy())
        axes[3].plot(k, norms.prod(1), label="prod_k |W_k| (balanced)")
        for j in range(L):
            axes[3].plot(k, norms[:, j], lw=0.8, label=f"|W{j + 1}|")
        one = tables["one_layer"]
        axes[3].plot(one["step"].clip(lower=1), np.sqrt(one["sq_norm_1"]), color="black", ls="--",
                     label="one-layer |w|")
        axes[3].axvline(cfg["late_from"] * cfg["steps"], color="grey", lw=0.6)
        axes[3].set_yscale("log")
        axes[3].set_title("growth against log k (late window right of the line)", fontsize=8)
        for ax, (run, t) in zip(axes[:2], [(r, tables[r]) for r in ("balanced", "unbalanced")]):
            k = t["step"].clip(lower=1)
            sq = t[[f"sq_norm_{j}" for j in range(1, L + 1)]].to_numpy()
            for j in range(L):
                ax.plot(k, sq[:, j], label=f"|W{j + 1}|^2")
            for j in range(L - 1):
                ax.plot(k, sq[:, j] - sq[:, j + 1], ls="--", label=f"|W{j + 1}|^2 - |W{j + 2}|^2")
            ax.set_title(f"{run} init")
            axes[2].plot(k, t["normalized_margin"], label=f"{run} init")
        axes[2].set_ylabel("normalized margin")
        for ax in axes:
            ax.set_xscale("log")
            ax.set_xlabel("GD step")
            ax.legend(fontsize=6)
        plots.save(fig, caption, png, pdf)
    return Outcome(table, balance_claims(m, cfg, tol) + growth_claims(m, cfg, tol), draw, extra={"measurements": m})
