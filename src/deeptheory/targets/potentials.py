"""Synthetic targets on potentials: Langevin gradient descent (GDL), SGD and SGDL on
minima of equal depth (memo073 Figs 7-10, memo100 Fig 2)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import claims as C
from .. import plots
from . import Inputs, Outcome

from ..synthetic import langevin


def _sampler(cfg):
    return float(cfg["eta"]), float(cfg["sigma"])


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


def langevin_dims(inp: Inputs) -> Outcome:
    cfg, tol, seed = inp.cfg, inp.tol, inp.seed
    P = langevin.TwoWells()
    table, slices = _shares(P, cfg["dims"], cfg, seed, start=cfg["start"])
    t = tol.sampling_se_k * float(table["se"].max())
    held, worst = C.trend(table["D"], table["share_flat"], t, "rises")
    out = [C.claim("t3-langevin-dims:flat-share-grows", "the share of samples in the flatter minimum grows with dimension",
                   held, "share of the wells' samples in the flat one by D: "
                   + ", ".join(f"{d}: {s:.3f}" for d, s in zip(table["D"], table["share_flat"])),
                   f"rises: tolerance {t:.4f} ({tol.sampling_se_k:g} standard errors over chains); worst step against it {worst:+.4f}; "
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
                       abs(got - exact) <= tol.sampling_se_k * se, f"right-well share {got:.4f} +- {se:.4f} sampled, {exact:.4f} exact",
                       f"held within {tol.sampling_se_k:g} standard errors; U = (x^2 - 1)^2 + x/4, T = {ck['T']}, eta = {ck['eta']}, "
                       f"exact share by numerical integration"))
    return Outcome(table, out, _slice_figure(slices, P.box, [(P.a, "narrow"), (P.b, "flat")], "w1"))


def langevin_2d(inp: Inputs) -> Outcome:
    cfg, tol, seed = inp.cfg, inp.tol, inp.seed
    P = langevin.ValleyAndPoint()
    table, slices = _shares(P, cfg["dims"], cfg, seed)
    table = table.rename(columns={"share_flat": "share_degenerate"})
    t = tol.sampling_se_k * float(table["se"].max())
    worst_low = float((table["share_degenerate"] - tol.sampling_se_k * table["se"]).min())
    held, worst = C.trend(table["D"], table["share_degenerate"], t, "rises")
    shares = ", ".join(f"{d}: {s:.4f}" for d, s in zip(table["D"], table["share_degenerate"]))
    return Outcome(table, [
        C.claim("t3-langevin-2d:degenerate-holds-more", "the degenerate minimum holds more mass", worst_low > 0.5,
                f"share in degenerate minimum by D: {shares}", f"held if every share exceeds 0.5 by {tol.sampling_se_k:g} standard errors"),
        C.claim("t3-langevin-2d:concentration-grows", "concentration on the degenerate minimum grows with dimension",
                held, f"share by D: {shares}", f"rises: tolerance {t:.4f} ({tol.sampling_se_k:g} standard errors); worst step {worst:+.4f}"),
    ], _slice_figure(slices, P.box, [(P.v, "degenerate"), (P.p, "point")], "w1 (degenerate minimum at %.1f)" % P.v))


def sgd_potential(inp: Inputs) -> Outcome:
    cfg, tol, seed = inp.cfg, inp.tol, inp.seed
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
                   f"{r.method} prefers the degenerate minimum", r.share_degenerate - tol.sampling_se_k * r.se > 0.5,
                   f"share in degenerate minimum {r.share_degenerate:.4f} +- {r.se:.4f}",
                   f"held if above 0.5 by {tol.sampling_se_k:g} standard errors; minibatch {cfg['batch']} of {cfg['n_points']} "
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
    return Outcome(table, out, draw)


BUILD = {
    "t3-langevin-dims": langevin_dims,
    "t3-langevin-2d": langevin_2d,
    "t3-sgd-potential": sgd_potential,
}
