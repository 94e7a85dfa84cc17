"""slides-degenerate: the slides' "Over-parametric Landscapes: as p > n, equilibria are all
degenerate", and their summary's "flat (degenerate) global minima".

At a zero-loss minimum of the square loss the Hessian is J^T J / n, of rank at most n (one
output), so at least p - n of its eigenvalues vanish. The target trains a small tanh net of p
parameters to a minimum on n teacher-labelled points for a grid of n at fixed p, takes the
full Hessian there in float64 and counts its near-zero eigenvalues; the control is the same
count where n > p, at the teacher (a zero-loss minimum at every n) and at trained minima that
reach zero loss, where nothing forces a flat direction.

``degenerate_claims(table, cfg, tol)`` is pure, so tests can feed it tables that break each
claim."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import torch

from .. import claims as C
from .. import plots
from . import Inputs, Outcome, Target
from ..synthetic import hessian as H

# The registry's entries (deeptheory.targets): plain literals, read without importing this module.
TARGETS = [
    Target(
        id="slides-degenerate",
        source='slides "Over-parametric Landscapes: as p > n, equilibria are all degenerate"',
        what="tanh net trained to a zero square-loss minimum on n points: near-zero Hessian eigenvalues vs p - n",
        claims="where p > n the minimum reached has at least p - n Hessian eigenvalues below the tolerance (the rank "
               "of J^T J is at most n); control: where n > p a zero-loss minimum has none",
        builder="landscape",
    ),
]


def reached(table: pd.DataFrame, tol) -> pd.Series:
    """A zero-loss minimum: loss at most ``interp_loss`` (there the residual part of the
    Hessian is far below ``hessian_zero_rtol``; its measured norm is in the table) and
    gradient norm below ``gradient_converged``."""
    return (table["loss"] <= tol.interp_loss) & (table["grad_norm"] < tol.gradient_converged)


def _counts(sel: pd.DataFrame) -> str:
    return ", ".join(f"n = {r.n} ({r.where}): {r.near_zero} near 0, max(p - n, 0) = {max(r.p - r.n, 0)}"
                     f" (loss {r.loss:.1e}, |grad| {r.grad_norm:.1e})" for r in sel.itertuples()) or "none"


def degenerate_claims(table: pd.DataFrame, cfg: dict, tol) -> list[dict]:
    """``table``: one row per (n, where) with p, loss, grad_norm and near_zero (eigenvalues
    with |lambda| <= hessian_zero_rtol x the largest); ``where`` is ``trained`` (LM from a
    random init) or ``teacher`` (the labelling net, a zero-loss minimum by construction)."""
    ok = reached(table, tol)
    rtol = f"|lambda| <= {tol.hessian_zero_rtol:g} x the largest |lambda|"
    zero = f"a zero-loss minimum (loss <= {tol.interp_loss:g}, |grad| < {tol.gradient_converged:g})"

    # the slides' statement: every trained net with n < p, at its zero-loss minimum
    over = table[(table["where"] == "trained") & (table["p"] > table["n"])]
    fewer = over[ok[over.index] & (over["near_zero"] < over["p"] - over["n"])]
    missed = over[~ok[over.index]]
    p = int(table["p"].iloc[0]) if len(table) else 0
    flat = C.claim(
        "slides-degenerate:flat-when-p-above-n",
        "as p > n the minima reached are degenerate: at least p - n flat directions of the Hessian",
        fewer.empty, _counts(over),
        f"held if at every grid n < p the trained net reaches {zero} and its Hessian has at least p - n "
        f"eigenvalues with {rtol} (rank J^T J <= n); refuted if a zero-loss minimum has fewer; inconclusive if a "
        f"point did not reach one (still falling at its cap) or the grid has no n < p; p = {p}",
        inconclusive=C.verdict_of(fewer.empty and missed.empty and not over.empty, not fewer.empty,
                                  C.UNTESTABLE if over.empty else C.NOT_CONVERGED))

    # the control: past p nothing forces a zero eigenvalue at a zero-loss minimum
    past = table[table["p"] < table["n"]]
    judged = past[ok[past.index]]
    flat_past = judged[judged["near_zero"] > 0]
    control = C.claim(
        "slides-degenerate:control-n-above-p", "control: where n > p a zero-loss minimum is non-degenerate",
        flat_past.empty, _counts(past),
        f"held if at every grid n > p every point that is {zero} (the teacher, and the trained net where it "
        f"reached one) has no eigenvalue with {rtol}; refuted if one has: then the count measures the net's "
        f"conditioning, not the rank bound; inconclusive if the grid has no n > p, or no zero-loss minimum there "
        f"(positive-loss minima of trained nets are reported, not judged)",
        inconclusive=C.verdict_of(flat_past.empty and not judged.empty, not flat_past.empty,
                                  C.UNTESTABLE if past.empty else C.NOT_CONVERGED))
    return [flat, control]


def landscape(inp: Inputs) -> Outcome:
    cfg, tol, seed = inp.cfg, inp.tol, inp.seed
    d, hidden = cfg["d"], cfg["hidden"]
    p = H.n_params(d, hidden)
    gen = torch.Generator().manual_seed(seed)
    teacher = H.teacher(d, hidden, gen)
    rows, spectra = [], {}
    for n in cfg["n"]:
        X, y = H.data(n, d, teacher, hidden, gen)
        theta, trace = H.levenberg_marquardt(H.init(d, hidden, gen), X, y, hidden, cfg["steps"])
        for where, point, steps in [("trained", theta, len(trace) - 1), ("teacher", teacher, 0)]:
            m = H.at_minimum(point, X, y, hidden)
            lam = m.pop("eigenvalues")
            spectra[n, where] = lam
            rows.append({"n": n, "p": p, "where": where, **m, "lm_steps": steps,
                         "lambda_max": float(np.abs(lam).max()), "lambda_min_rel": float(lam.min() / np.abs(lam).max()),
                         "near_zero": H.near_zero(lam, tol.hessian_zero_rtol), "rank_bound_zeros": max(p - n, 0)})
    table = pd.DataFrame(rows)
    table["zero_loss_minimum"] = reached(table, tol)

    def draw(caption, png, pdf):
        fig, axes = plots.panels(2, width=5.0)
        cmap = matplotlib.colormaps["viridis"]
        colors = {n: cmap(i / max(len(cfg["n"]) - 1, 1)) for i, n in enumerate(cfg["n"])}
        for n in cfg["n"]:
            lam = np.sort(np.abs(spectra[n, "trained"]))
            rel = np.maximum(lam / lam.max(), 1e-20)
            axes[0].plot(np.arange(1, p + 1), rel, ".-", lw=0.8, ms=3, color=colors[n], label=f"n = {n}")
            if p > n:
                axes[0].axvline(p - n + 0.5, color=colors[n], ls=":", lw=0.8)
        axes[0].axhline(tol.hessian_zero_rtol, color="grey", ls="--", lw=1, label="tolerance")
        axes[0].set_yscale("log")
        axes[0].set_xlabel("eigenvalue index (ascending |lambda|); dotted: p - n")
        axes[0].set_ylabel("|lambda| / max |lambda| (trained net)")
        axes[0].legend(fontsize=6)
        for where, marker in [("trained", "o"), ("teacher", "x")]:
            g = table[table["where"] == where]
            axes[1].plot(g["n"], g["near_zero"], marker=marker, ls="-" if where == "trained" else "",
                         label=f"near-zero eigenvalues, {where}")
        missed = table[~table["zero_loss_minimum"]]
        axes[1].scatter(missed["n"], missed["near_zero"], s=80, facecolors="none", edgecolors="red",
                        label="trained: no zero-loss minimum reached", zorder=3)
        ns = np.array(sorted(cfg["n"]))
        axes[1].plot(ns, np.maximum(p - ns, 0), color="grey", ls="--", label="max(p - n, 0)")
        axes[1].axvline(p, color="black", ls=":", lw=1, label=f"n = p = {p}")
        axes[1].set_xscale("log")
        axes[1].set_xlabel("training points n")
        axes[1].set_ylabel("eigenvalues below tolerance")
        axes[1].legend(fontsize=6)
        plots.save(fig, caption, png, pdf)
    setup = (f"tanh net {d} -> {hidden} -> 1 with biases (p = {p}), teacher of the same shape, square loss, "
             f"Levenberg-Marquardt up to {cfg['steps']} steps, float64 Hessian")
    return Outcome(table, degenerate_claims(table, cfg, tol), draw, setup=setup)
