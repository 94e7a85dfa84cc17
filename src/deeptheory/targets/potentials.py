"""Synthetic targets on potentials: Langevin gradient descent (GDL), SGD and SGDL on
minima of equal depth (memo073 Figs 7-10, memo100 Fig 2).

Each target computes a small measurements dict; a pure function ``*_claims(m, cfg, tol)``
turns it into claim rows, so tests can feed it measurements that break each claim."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import claims as C
from .. import plots
from . import Inputs, Outcome, Target

from ..synthetic import langevin

# The registry's entries (deeptheory.targets): plain literals, read without importing this module.
TARGETS = [
    Target(
        id="t3-langevin-dims",
        source="memo073 Fig 7",
        what="GDL on two equal-depth minima, one 2x flatter per dimension; histograms of w1 for D = 1..5",
        claims="the share of samples in the flatter minimum grows with dimension, as the Boltzmann distribution "
               "predicts",
        builder="langevin_dims",
    ),
    Target(
        id="t3-langevin-2d",
        source="memo073 Figs 8, 9",
        what="GDL on a degenerate and a non-degenerate minimum; slices of w1 as D grows",
        claims="the degenerate minimum holds more mass; concentration on it grows with dimension",
        builder="langevin_2d",
    ),
    Target(
        id="t3-sgd-potential",
        source="memo073 Fig 10, memo100 Fig 2",
        what="SGD (minibatch noise) and SGDL on the 2D potential",
        claims="SGD (minibatch noise) and SGDL prefer the degenerate minimum",
        builder="sgd_potential",
    ),
]


def _shares(potential, dims, chains, steps, eta, sigma, seed, start=None, device=None):
    """GDL chains at each D: sampled share of the wells' samples in the flat (degenerate)
    well with its standard error, plateau mass, moves between wells, and the exact
    Boltzmann values at T = sigma^2 / (2 eta). ``start``: every coordinate's start, "boltzmann"
    (exact draws from exp(-U/T) on the box) or None (uniform on the box)."""
    T = sigma**2 / (2 * eta)
    rows, slices = [], {}
    for D in dims:
        rng = np.random.default_rng([seed, D])
        w0 = (langevin.boltzmann_starts(potential, D, T, chains, rng) if start == "boltzmann"
              else np.full((chains, D), float(start)) if start is not None
              else rng.uniform(0, potential.box, (chains, D)))
        states = langevin.run_chains(potential.grad, w0, steps, eta, sigma, rng, box=potential.box, device=device)
        in_well, in_flat = langevin.basins(potential, states)
        share, se = langevin.ratio_with_error(in_flat, in_well) if in_well.any() else (float("nan"), float("nan"))
        exact, plateau_exact = langevin.exact_shares(potential, D, T)
        rows.append({"D": D, "eta": eta, "T": T, "chains": chains, "steps": steps, "share_flat": share, "se": se,
                     "exact_share": exact, "plateau": 1 - float(in_well.mean()), "plateau_exact": plateau_exact,
                     "moves_per_chain": float(langevin.moves_per_chain(in_well, in_flat).mean())})
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


def _by_d(rows, key, fmt="{:.3f}"):
    return ", ".join(f"{r['D']}: " + fmt.format(r[key]) for r in rows)


def _se_floor(r) -> float:
    """A chain-bootstrap standard error is 0 when no chain visits one well; the resolution
    of ``chains`` independent chains, 1 / chains, stands in below it."""
    se = r["se"]
    return max(se if np.isfinite(se) else 0.0, 1.0 / r["chains"])


def boltzmann_claim(cid: str, rows: list[dict], what: str, tol, min_moves: float | None = None) -> dict:
    """Sampled share against the exact Boltzmann share at every D, within sampling_se_k
    standard errors. With ``min_moves`` the chains started from the Boltzmann law itself: a D
    whose chains moved between wells less than that (mean per chain) kept their starts' share
    and says nothing of the stationary law, so it can refute nothing and leaves the claim
    inconclusive (NOT_MIXED) unless another D refutes it."""
    k = tol.sampling_se_k
    devs = [abs(r["share_flat"] - r["exact_share"]) / _se_floor(r) for r in rows]
    far = [not (np.isfinite(d) and d <= k) for d in devs]
    mixed = [min_moves is None or r["moves_per_chain"] >= min_moves for r in rows]
    refuted = any(f and m_ for f, m_ in zip(far, mixed))
    why = None if refuted or all(mixed) else C.NOT_MIXED
    r0 = rows[0]
    if min_moves is None:
        rule = (f"held if at every D the sampled share is within {k:g} standard errors (over {r0['chains']} chains, at "
                f"least 1/chains) of exp(-U/T) integrated over each well (U < {langevin.WELL_LEVEL}) at T = {r0['T']:g}; "
                f"fails if the step distorts the stationary law (a coarse step is not a Boltzmann sampler: the discrete "
                f"chain's variance in a well of curvature k is T/k x 2/(2 - eta k)) or the chains do not mix between wells "
                f"in {r0['steps']} steps (few moves)")
    else:
        rule = (f"chains start from exact draws of the Boltzmann law exp(-U/T) on the box (rejection from the uniform "
                f"law), so a share that departs from it is the step's doing, not the start's; held if at every D the "
                f"sampled share matches exp(-U/T) integrated over each well (U < {langevin.WELL_LEVEL}) at T = "
                f"{r0['T']:g} within {k:g} standard errors (over {r0['chains']} chains, at least 1/chains) and the chains "
                f"mixed (mean moves between wells per chain >= {min_moves:g} at every D); refuted if at a D whose chains "
                f"mixed it differs beyond that; inconclusive (not mixed) if chains that did not move are all that "
                f"could tell: a chain that stays in its well keeps its start's share whatever the stationary law")
    return C.claim(
        cid, f"GDL at eta = {r0['eta']:g} samples the Boltzmann share of the {what} minimum", not any(far),
        f"sampled vs exact share by D: " + ", ".join(f"{r['D']}: {r['share_flat']:.3f} vs {r['exact_share']:.3f}" for r in rows)
        + f"; deviation in standard errors by D: " + ", ".join(f"{r['D']}: {d:.1f}" for r, d in zip(rows, devs))
        + "; plateau mass sampled vs exact by D: " + ", ".join(f"{r['D']}: {r['plateau']:.3f} vs {r['plateau_exact']:.3f}" for r in rows)
        + "; moves between wells per chain by D: " + _by_d(rows, "moves_per_chain", "{:.2f}"),
        rule, inconclusive=why)


def langevin_dims_claims(m: dict, cfg: dict, tol) -> list[dict]:
    """``m``: memo (rows per D at the memo's step), fine (rows per D at a fine step at the same
    T, from Boltzmann starts), check ({got, se, exact, T, eta}, the sampler on a double well)."""
    rows = m["memo"]
    t = tol.sampling_se_k * max(_se_floor(r) for r in rows)
    held, worst = C.trend([r["D"] for r in rows], [r["share_flat"] for r in rows], t, "rises")
    ck = m["check"]
    return [
        C.claim("t3-langevin-dims:flat-share-grows", "the share of samples in the flatter minimum grows with dimension", held,
                "share of the wells' samples in the flat one by D: " + _by_d(rows, "share_flat")
                + "; Boltzmann: " + _by_d(rows, "exact_share"),
                f"rises: tolerance {t:.4f} ({tol.sampling_se_k:g} standard errors over chains); worst step against it "
                f"{worst:+.4f}; fails if the share falls or stays flat as D grows; eta {rows[0]['eta']:g}, T = {rows[0]['T']:g}; "
                f"plateau mass by D: " + _by_d(rows, "plateau", "{:.2f}")),
        boltzmann_claim("t3-langevin-dims:boltzmann-memo-step", rows, "flat", tol),
        boltzmann_claim("t3-langevin-dims:boltzmann-fine-step", m["fine"], "flat", tol, min_moves=tol.mix_min_moves),
        C.claim("t3-langevin-dims:sampler-matches-boltzmann", "GDL on a double well puts the Boltzmann share of mass in each well",
                abs(ck["got"] - ck["exact"]) <= tol.sampling_se_k * ck["se"],
                f"right-well share {ck['got']:.4f} +- {ck['se']:.4f} sampled, {ck['exact']:.4f} exact",
                f"held within {tol.sampling_se_k:g} standard errors; fails if the sampler is biased; U = (x^2 - 1)^2 + x/4, "
                f"T = {ck['T']}, eta = {ck['eta']}, exact share by numerical integration"),
    ]


def langevin_dims(inp: Inputs) -> Outcome:
    cfg, tol, seed, dev = inp.cfg, inp.tol, inp.seed, langevin.chain_device(inp.device)
    P = langevin.TwoWells()
    eta, sigma = float(cfg["eta"]), float(cfg["sigma"])
    memo, slices = _shares(P, cfg["dims"], cfg["chains"], cfg["steps"], eta, sigma, seed, start=cfg["start"], device=dev)
    f = cfg["fine"]
    fine_sigma = float(np.sqrt(2 * f["eta"] * sigma**2 / (2 * eta)))  # the same T at a finer step
    # the fine chains start from the Boltzmann law: from the memo's start at 7 they barely move between wells in
    # 2,000 time units, and their share would be where they fell, not the stationary law
    fine, _ = _shares(P, cfg["dims"], f["chains"], f["steps"], float(f["eta"]), fine_sigma, seed + 1, start="boltzmann",
                      device=dev)
    ck = cfg["check"]
    got, se = langevin.sampled_right_share(ck["T"], ck["eta"], ck["steps"], ck["chains"], seed, device=dev)
    m = {"memo": memo.to_dict("records"), "fine": fine.to_dict("records"),
         "check": {"got": got, "se": se, "exact": langevin.boltzmann_right_share(ck["T"]), "T": ck["T"], "eta": ck["eta"]}}
    table = pd.concat([memo.assign(run="memo step"), fine.assign(run="fine step")], ignore_index=True)
    return Outcome(table, langevin_dims_claims(m, cfg, tol),
                   _slice_figure(slices, P.box, [(P.a, "narrow"), (P.b, "flat")], "w1"))


def langevin_2d_claims(m: dict, cfg: dict, tol) -> list[dict]:
    """``m``: rows (per D: share_flat = share in the degenerate minimum, se, exact_share,
    plateau, plateau_exact, moves_per_chain, chains, eta, T, steps)."""
    rows = m["rows"]
    k = tol.sampling_se_k
    t = k * max(_se_floor(r) for r in rows)
    worst_low = min(r["share_flat"] - k * _se_floor(r) for r in rows)
    held, worst = C.trend([r["D"] for r in rows], [r["share_flat"] for r in rows], t, "rises")
    shares = _by_d(rows, "share_flat", "{:.4f}")
    return [
        C.claim("t3-langevin-2d:degenerate-holds-more", "the degenerate minimum holds more mass", worst_low > 0.5,
                f"share in degenerate minimum by D: {shares}",
                f"held if every share exceeds 0.5 by {k:g} standard errors; fails if at some D the point minimum holds "
                f"as much or more"),
        C.claim("t3-langevin-2d:concentration-grows", "concentration on the degenerate minimum grows with dimension", held,
                f"share by D: {shares}; Boltzmann: " + _by_d(rows, "exact_share", "{:.4f}"),
                f"rises: tolerance {t:.4f} ({k:g} standard errors); worst step {worst:+.4f}; fails if the share falls or "
                f"stays flat as D grows"),
        boltzmann_claim("t3-langevin-2d:boltzmann-memo-step", rows, "degenerate", tol),
    ]


def langevin_2d(inp: Inputs) -> Outcome:
    cfg, tol, seed = inp.cfg, inp.tol, inp.seed
    P = langevin.ValleyAndPoint()
    table, slices = _shares(P, cfg["dims"], cfg["chains"], cfg["steps"], float(cfg["eta"]), float(cfg["sigma"]), seed,
                            device=langevin.chain_device(inp.device))
    out = langevin_2d_claims({"rows": table.to_dict("records")}, cfg, tol)
    table = table.rename(columns={"share_flat": "share_degenerate"})
    return Outcome(table, out, _slice_figure(slices, P.box, [(P.v, "degenerate"), (P.p, "point")],
                                             "w1 (degenerate minimum at %.1f)" % P.v))


def sgd_claims(m: dict, cfg: dict, tol) -> list[dict]:
    """``m``: per method (GD, the spread-0 control; SGD; SGDL): share (of in-well samples in the
    degenerate minimum), se, moves (mean moves between wells per chain), in_wells; and depths
    (valley, point: the depths of the per-example losses' average; copies_valley, copies_point:
    of the shifted copies' average, the earlier model's)."""
    gd, k, dp = m["GD"], tol.sampling_se_k, m["depths"]
    gap = abs(dp["valley"] - dp["point"]) / max(dp["valley"], dp["point"])
    equal = gap <= tol.depth_rtol
    out = []
    for method in ("SGD", "SGDL"):
        r = m[method]
        se = float(np.hypot(r["se"], gd["se"]))
        excess = r["share"] - gd["share"]
        mixed = r["moves"] >= tol.sgd_min_moves
        why = (C.OUT_OF_REGIME if not equal else C.NOT_MIXED if not mixed
               else None if abs(excess) > k * se else C.WITHIN_NOISE)
        out.append(C.claim(
            f"t3-sgd-potential:{method.lower()}-prefers-degenerate",
            f"{method} prefers the degenerate minimum to the point minimum of the same depth (beyond the spread-0 "
            f"control: noiseless GD from the same starts)", excess > k * se,
            f"share in degenerate minimum {r['share']:.4f} +- {r['se']:.4f}, spread-0 control (GD from the same starts) "
            f"{gd['share']:.4f} +- {gd['se']:.4f} (excess {excess:+.4f}, {excess / se if se else float('inf'):.1f} se); "
            f"moves between wells per chain {r['moves']:.2f}; samples in wells {r['in_wells']:.2f} (control "
            f"{gd['in_wells']:.2f}); depths of the averaged loss: valley {dp['valley']:.4f}, point {dp['point']:.4f} "
            f"(shifted copies alone: {dp['copies_valley']:.2f}, {dp['copies_point']:.2f})",
            f"held if the averaged loss's minima are of equal depth (within {tol.depth_rtol:g} relative; else out of the "
            f"memo's regime, inconclusive), the chains move between wells (mean >= {tol.sgd_min_moves:g} moves per chain; "
            f"without moves the share measures basin sizes, not {method}: inconclusive) and the share beats the spread-0 "
            f"control's by {k:g} standard errors; refuted if the control's beats it by as much. "
            f"Minibatches of {cfg['batch']} of n = {cfg['n_points']} per-example losses V_i(w) = U(w) + U(w - z_i) - "
            f"mean_j U(w - z_j), shifts z_i on a product set of Gaussian draws of sd {cfg['spread']}: their average is "
            f"the potential U itself (memo073 eqs. 6-8: SGD descends U = (1/n) sum_i V(f, z_i) plus noise of mean 0, "
            f"and Fig. 10's U has minima of the same depth), and the noise is a shifted copy's deviation from the "
            f"copies' average. Shifted copies alone average to U smoothed by the spread, whose minima are not of "
            f"equal depth (the figures in brackets): a valley preference there could be depth, not degeneracy. The "
            f"control is the same procedure at spread 0 (every V_i = U: plain GD on U)", inconclusive=why))
    return out


def sgd_potential(inp: Inputs) -> Outcome:
    cfg, tol, seed, dev = inp.cfg, inp.tol, inp.seed, langevin.chain_device(inp.device)
    P = langevin.ValleyAndPoint()
    eta, sigma = float(cfg["eta"]), float(cfg["sigma"])
    side = int(round(np.sqrt(cfg["n_points"])))
    if side * side != cfg["n_points"]:
        raise ValueError(f"t3-sgd-potential: n_points {cfg['n_points']} is not a square (a product set of shifts)")
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, cfg["spread"], (2, side))
    starts = rng.uniform(0, P.box, (cfg["chains"], 2))
    depths = langevin.averaged_depths(P, a, b)
    # the spread-0 control: every shift 0, so no minibatch noise: plain GD on U from the same starts
    control = langevin.zero_mean_minibatch_gradient(P, np.zeros(side), np.zeros(side), cfg["batch"])
    final = langevin.run_chains(None, starts, cfg["gd_steps"], eta, 0.0, rng, box=P.box, grad_noise=control,
                                record_every=1, burn_in=1 - 1 / cfg["gd_steps"], device=dev)
    runs = {"GD": final}
    grad = langevin.zero_mean_minibatch_gradient(P, a, b, cfg["batch"])
    for method, noise in [("SGD", 0.0), ("SGDL", sigma)]:
        r = np.random.default_rng([seed, int(noise * 1000)])
        runs[method] = langevin.run_chains(None, starts, cfg["steps"], eta, noise, r, box=P.box, grad_noise=grad,
                                           device=dev)
    m, rows, states = {"depths": depths}, [], {}
    for method, s in runs.items():
        in_well, in_flat = langevin.basins(P, s)
        share, se = langevin.ratio_with_error(in_flat, in_well)
        m[method] = {"share": share, "se": se, "in_wells": float(in_well.mean()),
                     "moves": float(langevin.moves_per_chain(in_well, in_flat).mean())}
        rows.append({"method": method, "spread": 0.0 if method == "GD" else float(cfg["spread"]),
                     "share_degenerate": share, "se": se, "in_wells": m[method]["in_wells"],
                     "moves_per_chain": m[method]["moves"], "noise_sigma": sigma if method == "SGDL" else 0.0,
                     "steps": cfg["gd_steps"] if method == "GD" else cfg["steps"],
                     "depth_valley": depths["valley"], "depth_point": depths["point"]})
        states[method] = s
    table = pd.DataFrame(rows)

    def draw(caption, png, pdf):
        fig, axes = plots.panels(3, width=3.4)
        for ax, method in zip(axes[:2], ("SGD", "SGDL")):
            ax.hist(states[method][:, :, 0].ravel(), bins=30, range=(0, P.box), density=True, label=method)
            ax.hist(states["GD"][-1][:, 0], bins=30, range=(0, P.box), density=True, histtype="step", color="k",
                    label="spread 0 (GD), same starts")
            ax.set_title(method)
            ax.set_xlabel("w1 (degenerate minimum at %.1f)" % P.v)
            ax.legend(fontsize=6)
        last = states["SGDL"][-1]
        axes[2].scatter(last[:, 0], last[:, 1], s=3, alpha=0.5)
        axes[2].set_title("SGDL, final states")
        axes[2].set_xlabel("w1")
        axes[2].set_ylabel("w2")
        plots.save(fig, caption, png, pdf)
    return Outcome(table, sgd_claims(m, cfg, tol), draw)
