"""Synthetic targets on potentials: Langevin gradient descent (GDL), SGD and SGDL on
minima of equal depth (memo073 Figs 7-10, memo100 Fig 2).

Each target computes a small measurements dict; a pure function ``*_claims(m, cfg, tol)``
turns it into claim rows, so tests can feed it measurements that break each claim."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import claims as C
from .. import plots
from . import Inputs, Outcome

from ..synthetic import langevin


def _shares(potential, dims, chains, steps, eta, sigma, seed, start=None, device=None):
    """GDL chains at each D: sampled share of the wells' samples in the flat (degenerate)
    well with its standard error, plateau mass, moves between wells, and the exact
    Boltzmann values at T = sigma^2 / (2 eta)."""
    T = sigma**2 / (2 * eta)
    rows, slices = [], {}
    for D in dims:
        rng = np.random.default_rng([seed, D])
        w0 = (np.full((chains, D), float(start)) if start is not None
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


def boltzmann_claim(cid: str, rows: list[dict], what: str, tol) -> dict:
    """Sampled share against the exact Boltzmann share at every D, within sampling_se_k
    standard errors."""
    devs = [abs(r["share_flat"] - r["exact_share"]) / _se_floor(r) for r in rows]
    held = all(np.isfinite(d) and d <= tol.sampling_se_k for d in devs)
    r0 = rows[0]
    return C.claim(
        cid, f"GDL at eta = {r0['eta']:g} samples the Boltzmann share of the {what} minimum", held,
        f"sampled vs exact share by D: " + ", ".join(f"{r['D']}: {r['share_flat']:.3f} vs {r['exact_share']:.3f}" for r in rows)
        + f"; deviation in standard errors by D: " + ", ".join(f"{r['D']}: {d:.1f}" for r, d in zip(rows, devs))
        + "; plateau mass sampled vs exact by D: " + ", ".join(f"{r['D']}: {r['plateau']:.3f} vs {r['plateau_exact']:.3f}" for r in rows)
        + "; moves between wells per chain by D: " + _by_d(rows, "moves_per_chain", "{:.2f}"),
        f"held if at every D the sampled share is within {tol.sampling_se_k:g} standard errors (over {r0['chains']} chains, at "
        f"least 1/chains) of exp(-U/T) integrated over each well (U < {langevin.WELL_LEVEL}) at T = {r0['T']:g}; fails if the step "
        f"distorts the stationary law (a coarse step is not a Boltzmann sampler: the discrete chain's variance in a well of "
        f"curvature k is T/k x 2/(2 - eta k)) or the chains do not mix between wells in {r0['steps']} steps (few moves)")


def langevin_dims_claims(m: dict, cfg: dict, tol) -> list[dict]:
    """``m``: memo (rows per D at the memo's step), fine (rows per D at a fine step at the same
    T), check ({got, se, exact, T, eta}, the sampler on a double well)."""
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
        boltzmann_claim("t3-langevin-dims:boltzmann-fine-step", m["fine"], "flat", tol),
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
    fine, _ = _shares(P, cfg["dims"], f["chains"], f["steps"], float(f["eta"]), fine_sigma, seed + 1, start=cfg["start"],
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
    """``m``: per method (GD, SGD, SGDL): share (of in-well samples in the degenerate
    minimum), se, moves (mean moves between wells per chain), in_wells."""
    gd, k = m["GD"], tol.sampling_se_k
    out = []
    for method in ("SGD", "SGDL"):
        r = m[method]
        se = float(np.hypot(r["se"], gd["se"]))
        excess = r["share"] - gd["share"]
        mixed = r["moves"] >= tol.sgd_min_moves
        why = C.NOT_MIXED if not mixed else (None if abs(excess) > k * se else C.WITHIN_NOISE)
        out.append(C.claim(
            f"t3-sgd-potential:{method.lower()}-prefers-degenerate",
            f"{method} prefers the degenerate minimum (beyond noiseless GD from the same starts)", excess > k * se,
            f"share in degenerate minimum {r['share']:.4f} +- {r['se']:.4f}, GD from the same starts {gd['share']:.4f} +- "
            f"{gd['se']:.4f} (excess {excess:+.4f}, {excess / se if se else float('inf'):.1f} se); moves between wells per chain "
            f"{r['moves']:.2f}; samples in wells {r['in_wells']:.2f} (GD {gd['in_wells']:.2f})",
            f"held if chains move between wells (mean >= {tol.sgd_min_moves:g} moves per chain; without moves the share "
            f"measures basin sizes, not {method}: inconclusive) and the share beats GD's by {k:g} standard errors; "
            f"refuted if GD's beats it by as much. "
            f"Minibatch {cfg['batch']} of {cfg['n_points']} shifted copies of the potential (spread {cfg['spread']}); the "
            f"averaged potential is the valley and point smoothed by the spread, so its minima are no longer of equal "
            f"depth (1/sqrt(1 + s^2) vs 1/(1 + s^2) at s = spread)", inconclusive=why))
    return out


def sgd_potential(inp: Inputs) -> Outcome:
    cfg, tol, seed, dev = inp.cfg, inp.tol, inp.seed, langevin.chain_device(inp.device)
    P = langevin.ValleyAndPoint()
    eta, sigma = float(cfg["eta"]), float(cfg["sigma"])
    rng = np.random.default_rng(seed)
    shifts = rng.normal(0, cfg["spread"], (cfg["n_points"], 2))
    starts = rng.uniform(0, P.box, (cfg["chains"], 2))
    grad = langevin.minibatch_gradient(P, shifts, cfg["batch"])
    rows, states = [], {}
    final = langevin.run_chains(langevin.full_gradient(P, shifts), starts, cfg["gd_steps"], eta, 0.0, rng, box=P.box,
                                record_every=1, burn_in=1 - 1 / cfg["gd_steps"], device=dev)
    runs = {"GD": final}
    for method, noise in [("SGD", 0.0), ("SGDL", sigma)]:
        r = np.random.default_rng([seed, int(noise * 1000)])
        runs[method] = langevin.run_chains(None, starts, cfg["steps"], eta, noise, r, box=P.box, grad_noise=grad,
                                           device=dev)
    m = {}
    for method, s in runs.items():
        in_well, in_flat = langevin.basins(P, s)
        share, se = langevin.ratio_with_error(in_flat, in_well)
        m[method] = {"share": share, "se": se, "in_wells": float(in_well.mean()),
                     "moves": float(langevin.moves_per_chain(in_well, in_flat).mean())}
        rows.append({"method": method, "share_degenerate": share, "se": se, "in_wells": m[method]["in_wells"],
                     "moves_per_chain": m[method]["moves"], "noise_sigma": sigma if method == "SGDL" else 0.0,
                     "steps": cfg["gd_steps"] if method == "GD" else cfg["steps"]})
        states[method] = s
    table = pd.DataFrame(rows)

    def draw(caption, png, pdf):
        fig, axes = plots.panels(3, width=3.4)
        for ax, method in zip(axes[:2], ("SGD", "SGDL")):
            ax.hist(states[method][:, :, 0].ravel(), bins=30, range=(0, P.box), density=True, label=method)
            ax.hist(states["GD"][-1][:, 0], bins=30, range=(0, P.box), density=True, histtype="step", color="k",
                    label="GD, same starts")
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


BUILD = {
    "t3-langevin-dims": langevin_dims,
    "t3-langevin-2d": langevin_2d,
    "t3-sgd-potential": sgd_potential,
}
