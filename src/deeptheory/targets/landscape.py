"""memo073's evidence on the landscape around SGD's minimizers, from trained nets:

- t3-grad-hist (Fig 5): components of minibatch gradients at the final weights, their
  histograms and how Gaussian they are; their mean is the full gradient, "empirically very
  small".
- t3-landscape (Figs 11, 12, eq. 15): training error over the simplex of three minimizers
  of one training set; the flat low-error region is larger for natural labels.
- t3-flatness (Table 1, eq. 16): the flatness radius along random unit directions, over all
  parameters and over the top layer; larger for natural labels, printed beside the memo's.

Each analyzer measures one unit of nets (deeptheory.analyses.landscape); each builder
reads the units' tables only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .. import claims as C
from .. import plots
from ..analyses import landscape as L
from . import Analysis, Inputs, Outcome, Target

# The registry's entries (deeptheory.targets): plain literals, read without importing this module.
TARGETS = [
    Target(
        id="t3-grad-hist",
        source="memo073 Fig 5",
        what="components of minibatch gradients at a late step: histograms and normality",
        claims="components are roughly Gaussian (a normality statistic per component) and their mean is small "
               "against their spread; over a grid of minibatch sizes, Gaussian at some size between the extremes and "
               "not at B = 1 or B = N - 1",
        caption="histograms of components of minibatch gradients at the final (late) step of a trained net",
        builder="grad_hist",
        analyzer="grad_hist_analysis",
        unit="run",
        sweep="grid",
    ),
    Target(
        id="t3-landscape",
        source="memo073 Figs 11, 12, eq. 15",
        what="train error over the simplex of three SGD minimizers",
        claims="the flat low-error region is larger for natural labels than for random labels",
        caption="training error over the simplex of three SGD minimizers of one training set, natural and random "
                "labels",
        builder="landscape",
        analyzer="landscape_analysis",
        unit="seeds",
        sweep="grid",
    ),
    Target(
        id="t3-flatness",
        source="memo073 Table 1, eq. 16",
        what="flatness radius along random unit directions, all parameters and top layer",
        claims="the radius is larger for natural labels than for random labels in all four columns (data set x "
               "parameters); published values beside ours",
        caption="flatness radius: the largest step along a random unit direction with training error change <= "
                "epsilon, averaged over directions, for all parameters and for the top layer",
        builder="flatness",
        analyzer="flatness_analysis",
        unit="run",
        sweep="grid",
    ),
]

LABELS = ("natural", "random")
# t3-grad-hist's rows: the run's own minibatch size, and the grid of sizes (analysis.batch_sizes).
RUN_BATCH, GRID = "run batch", "batch-size grid"
PARAM_SETS = ("all parameters", "top layer")


def _as_list(v) -> list:
    return list(v) if isinstance(v, (list, tuple)) else [v]


def asked_and_used(inp: Inputs) -> list[tuple[str, str]]:
    """(data set the memo names, data set trained on) for each data set of the target."""
    return list(zip(_as_list(inp.requested), _as_list(inp.used)))


def stands_for(inp: Inputs, used: str) -> list[str]:
    return [a for a, u in asked_and_used(inp) if u == used]


def _run_fields(run) -> dict:
    s = run.spec
    return {"dataset": s.dataset, "model": s.model, "width": s.width, "labels": s.labels, "N": s.N,
            "n_params": sum(p.numel() for p in run.params.values()),
            "seed": s.seed, "train_err_final": float(C.final_rows(run.metrics)["train_err"].iloc[0])}


def _setup(rows: pd.DataFrame, what: str) -> str:
    W = ", ".join(f"{w:,}" for w in sorted(rows["n_params"].unique()))
    return (f"model {', '.join(sorted(rows['model'].unique()))}, W = {W}, "
            f"N = {', '.join(f'{n:,}' for n in sorted(rows['N'].unique()))}; {what}")


# --- t3-grad-hist ---------------------------------------------------------------------------

def grad_hist_analysis(runs, cfg: dict, seed: int) -> Analysis:
    """Sampled minibatch gradients at the final weights: per chosen component its moments
    and normality; the samples of ``shown`` components for histograms."""
    (run,) = runs
    gen = torch.Generator().manual_seed(int(seed))
    params = L.weights(run.model)
    W = sum(v.numel() for v in params.values())
    comps = torch.randperm(W, generator=gen)[: int(cfg["components"])].numpy()
    samples = L.minibatch_gradients(run.model, run.x, run.y, run.spec.batch_size, int(cfg["batches"]), gen)
    samples = samples[:, torch.as_tensor(comps)].double().cpu().numpy()
    full = L.full_gradient(run.model, run.x, run.y)[torch.as_tensor(comps)].double().cpu().numpy()
    table = pd.DataFrame({"component": comps, "param": L.component_names(params, comps),
                          **L.component_stats(samples), "full_gradient": full})
    table = table.assign(batch_size=min(run.spec.batch_size, run.spec.N), sample=RUN_BATCH)
    # Histograms of components that move (a dead unit's weight has a gradient of 0 throughout).
    shown = np.flatnonzero(table["sd"].to_numpy() > 0)[: int(cfg["shown"])]
    grid, grid_samples = _batch_size_grid(run, comps, cfg, gen, comps[shown[0]] if len(shown) else comps[0])
    names = np.tile(table["param"].to_numpy(), len(cfg["batch_sizes"]))  # the grid lists comps once per size
    table = pd.concat([table, grid.assign(param=names)], ignore_index=True)
    table = table.assign(**_run_fields(run), batches=int(cfg["batches"]))
    return Analysis(table, {"samples": samples[:, shown], "components": comps[shown], **grid_samples})


def _batch_size_grid(run, comps: np.ndarray, cfg: dict, gen: torch.Generator, drawn: int):
    """memo073 Fig 5's "minibatches that are not too small or too large": the same components'
    minibatch gradients at each size of ``batch_sizes``, from one pass of per-example
    gradients (a minibatch's gradient is their mean). Per size and component the statistics of
    :func:`L.component_stats`, the sd of single examples' gradients and the sd the finite
    population predicts for the size; the samples of component ``drawn`` at each size."""
    n, batches = len(run.y), int(cfg["batches"])
    sizes = [int(b) for b in cfg["batch_sizes"]]
    if max(sizes) >= n or min(sizes) < 1:
        raise ValueError(f"analysis.batch_sizes {sizes}: each must lie in [1, N - 1] = [1, {n - 1}] (at N the "
                         f"minibatch is the training set and its gradient has no spread)")
    per_example = L.per_example_gradients(run.model, run.x, run.y, comps)
    sd_1 = per_example.double().std(0).cpu().numpy()
    tables, drawn_samples = [], []
    for size in sizes:
        draws = L.batch_means(per_example, size, batches, gen)
        tables.append(pd.DataFrame({"component": comps, **L.component_stats(draws), "per_example_sd": sd_1,
                                    "fpc_sd": sd_1 * L.finite_population_sd(size, n)}).assign(batch_size=size))
        drawn_samples.append(draws[:, int(np.flatnonzero(comps == drawn)[0])])
    return (pd.concat(tables, ignore_index=True).assign(sample=GRID),
            {"grid_samples": np.stack(drawn_samples, axis=1), "grid_sizes": np.array(sizes),
             "grid_component": np.array([drawn])})


def _regime(rows: pd.DataFrame) -> tuple[str | None, str]:
    """memo073 Fig 5 reads the minibatch gradients of a net at convergence: one that has not
    reached zero training error is still descending, outside the regime the memo speaks of."""
    unfit = float(rows["train_err_final"].max()) if "train_err_final" in rows else 0.0
    if unfit > 0:
        return C.OUT_OF_REGIME, (f"; the net's final train err is {unfit:.4f}, not 0: outside the memo's regime "
                                 f"(a net at convergence)")
    return None, ""


def batch_size_summary(grid: pd.DataFrame) -> pd.DataFrame:
    """Per minibatch size of the grid: the median |excess kurtosis| over the moving components,
    how many move, and the median ratio of their sd to the finite-population prediction."""
    moving = grid[grid["sd"] > 0]
    moving = moving.assign(abs_kurtosis=moving["excess_kurtosis"].abs(), sd_over_fpc=moving["sd"] / moving["fpc_sd"],
                           sd_over_single=moving["sd"] / moving["per_example_sd"])
    return moving.groupby("batch_size").agg(
        kurtosis=("abs_kurtosis", "median"), moving=("sd", "size"), sd_over_fpc=("sd_over_fpc", "median"),
        sd_over_single=("sd_over_single", "median")).reset_index()


def _batch_size_claims(grid: pd.DataFrame, tol) -> list[dict]:
    """memo073 Fig 5: the histograms "look approximatively Gaussian ... for minibatches that are
    not too small or too large". Read on the grid of sizes: at some size strictly between the
    smallest and the largest the median |excess kurtosis| is within ``grad_kurtosis_max``; at
    the smallest and at the largest it is not. At B = 1 a component's law is that of single
    examples' gradients (heavy-tailed at zero training error: few examples carry the loss); a
    minibatch of B drawn without replacement from N is the set minus one of N - B, so its mean
    has the law of the mean of N - B mirrored and shrunk (excess kurtosis at B equals that at
    N - B) and its sd is the finite-population sd_1 sqrt((N - B) / ((N - 1) B)): close to N the
    histogram is single examples' again, collapsed onto the full gradient. Noise: the standard
    error of one component's sample kurtosis at ``batches`` Gaussian draws (the median over
    components is less noisy), times ``noise_z``."""
    ids = ("t3-grad-hist:gaussian-at-intermediate-batch", "t3-grad-hist:not-gaussian-at-extreme-batches")
    texts = ("at minibatch sizes not too small or too large the gradient components are roughly Gaussian",
             "at the smallest and the largest minibatch sizes they are not")
    per = batch_size_summary(grid)
    if len(per) < 3:
        measured = f"{len(per)} minibatch sizes with a moving component"
        return [C.untestable(cid, text, measured, "the grid needs a smallest, a largest and a size between them")
                for cid, text in zip(ids, texts)]
    why, regime = _regime(grid)
    thr, z = tol.grad_kurtosis_max, tol.noise_z
    batches = int(grid["batches"].iloc[0])
    se = L.kurtosis_se(batches)
    n = int(grid["N"].iloc[0]) if "N" in grid else None
    by_size = ", ".join(f"{b:g}: {k:.2f}" for b, k in zip(per["batch_size"], per["kurtosis"]))
    inner = per.iloc[1:-1]
    best = inner.loc[inner["kurtosis"].idxmin()]
    mid_held, mid_why = C.versus(float(best["kurtosis"]), se, thr, z, below=True)
    ends = per.iloc[[0, -1]]
    reads = [C.versus(float(k), se, thr, z, below=False) for k in ends["kurtosis"]]
    ends_held = all(h for h, _ in reads)
    ends_refuted = any(not h and r is None for h, r in reads)
    noise = (f"noise: the sample kurtosis of {batches} Gaussian draws has se {se:.3f}; a median differs from "
             f"grad_kurtosis_max = {thr:g} only beyond noise_z = {z:g} se ({z * se:.2f})")
    large = per.iloc[-1]
    collapse = (f"at B = {large['batch_size']:g}{f' of N = {n:,}' if n else ''} the median sd is "
                f"{large['sd_over_single']:.4f} of single examples' ({large['sd_over_fpc']:.3f} x the "
                f"finite-population prediction)")
    return [
        C.claim(ids[0], texts[0], mid_held,
                f"median |excess kurtosis| by minibatch size: {by_size}; least between the extremes "
                f"{best['kurtosis']:.3f} at B = {best['batch_size']:g}",
                f"held if at some size strictly between the grid's smallest and largest the median |excess kurtosis| "
                f"over the moving components is below grad_kurtosis_max by noise_z se; fails if at every such size it "
                f"is above by more; within noise otherwise; {noise}{regime}",
                inconclusive=why or mid_why),
        C.claim(ids[1], texts[1], ends_held,
                f"median |excess kurtosis| {ends['kurtosis'].iloc[0]:.3f} at B = {ends['batch_size'].iloc[0]:g}, "
                f"{ends['kurtosis'].iloc[1]:.3f} at B = {ends['batch_size'].iloc[1]:g}; {collapse}",
                f"held if at both the smallest and the largest size the median |excess kurtosis| exceeds "
                f"grad_kurtosis_max by noise_z se; fails if at either it is below by more; within noise otherwise "
                f"(without replacement the excess kurtosis at B equals that at N - B: the largest size shows single "
                f"examples' law shrunk by sqrt((N - B) / ((N - 1) B))); {noise}{regime}",
                inconclusive=why or C.verdict_of(ends_held, ends_refuted, C.WITHIN_NOISE)),
    ]


def _gaussian_claims(rows: pd.DataFrame, tol) -> list[dict]:
    moving = rows[rows["sd"] > 0]
    still = len(rows) - len(moving)
    if moving.empty:
        none = "no component with gradient spread > 0"
        return [C.untestable("t3-grad-hist:components-gaussian", "gradient components roughly Gaussian", none,
                             "every sampled component is constant"),
                C.untestable("t3-grad-hist:mean-small", "mean of each component small against its spread", none,
                             "every sampled component is constant")]
    why, regime = _regime(rows)
    kurt = float(moving["excess_kurtosis"].abs().median())
    skew = float(moving["skewness"].abs().median())
    normal = float((moving["shapiro_p"] > tol.normality_alpha).mean())
    ratio = float(moving["mean_over_sd"].median())
    q90 = float(moving["mean_over_sd"].quantile(0.9))
    n = f"{len(moving)} components ({still} constant ones left out)"
    return [
        C.claim("t3-grad-hist:components-gaussian", "gradient components roughly Gaussian", kurt <= tol.grad_kurtosis_max,
                f"median |excess kurtosis| {kurt:.3f}, median |skewness| {skew:.3f} over {n}; {normal:.0%} have "
                f"Shapiro-Wilk p > {tol.normality_alpha:g}",
                f"fails if the median |excess kurtosis| exceeds grad_kurtosis_max = {tol.grad_kurtosis_max:g} "
                f"(a Gaussian has 0, a Laplace 3, a uniform -1.2){regime}", inconclusive=why),
        C.claim("t3-grad-hist:mean-small", "mean of each component small against its spread (the full gradient is "
                "very small)", ratio <= tol.grad_mean_over_sd_max,
                f"median |mean| / sd {ratio:.3f} (90th percentile {q90:.3f}) over {n}",
                f"fails if the median |mean| / sd exceeds grad_mean_over_sd_max = {tol.grad_mean_over_sd_max:g}{regime}",
                inconclusive=why),
    ]


def _draw_batch_sizes(axes, grid: pd.DataFrame, arrays: dict, tol):
    """Fig 5's "not too small or too large": the median |excess kurtosis| and the spread by
    minibatch size, and one component's standardized histograms at the smallest, the most
    Gaussian between and the largest size."""
    kurt_ax, sd_ax, hist_ax = axes
    per = batch_size_summary(grid)
    if per.empty:
        for ax in axes:
            ax.set_title("no sampled component moves at any minibatch size", fontsize=7)
        return
    se = L.kurtosis_se(int(grid["batches"].iloc[0]))
    # Against min(B, N - B): without replacement B and N - B have the same excess kurtosis.
    n = int(grid["N"].iloc[0])
    low = per["batch_size"] <= n / 2
    kurt_ax.plot(per["batch_size"][low], per["kurtosis"][low], "o-", color="tab:green", label="B <= N/2 (at B)")
    kurt_ax.plot(n - per["batch_size"][~low], per["kurtosis"][~low], "s--", mfc="none", color="tab:olive",
                 label="B > N/2 (at N - B)")
    kurt_ax.axhline(tol.grad_kurtosis_max, color="grey", ls="--", lw=0.8, label="grad_kurtosis_max")
    kurt_ax.axhspan(max(tol.grad_kurtosis_max - tol.noise_z * se, 0), tol.grad_kurtosis_max + tol.noise_z * se,
                    color="grey", alpha=0.2, label=f"{tol.noise_z:g} se")
    kurt_ax.set(xscale="log", yscale="log", xlabel="min(B, N - B)", ylabel="median |excess kurtosis|")
    kurt_ax.legend(fontsize=6)
    sd_ax.plot(per["batch_size"], per["sd_over_single"], "o", color="tab:blue", label="measured")
    b = np.unique(np.geomspace(1, n - 1, 200).round())
    sd_ax.plot(b, L.finite_population_sd(b, n), color="tab:red", lw=1, label="sqrt((N-B)/((N-1)B))")
    sd_ax.set(xscale="log", yscale="log", xlabel="minibatch size B", ylabel="median sd / single examples' sd")
    sd_ax.legend(fontsize=6)
    unit = sorted(arrays)[0] if arrays else None
    if unit is None or "grid_samples" not in arrays[unit]:
        return
    draws, sizes = arrays[unit]["grid_samples"], list(arrays[unit]["grid_sizes"])
    inner = per.iloc[1:-1]
    pick = [sizes[0], int(inner.loc[inner["kurtosis"].idxmin(), "batch_size"]) if len(inner) else sizes[0], sizes[-1]]
    for b, color in zip(pick, ("tab:orange", "tab:green", "tab:purple")):
        col = draws[:, sizes.index(b)]
        if col.std() > 0:
            hist_ax.hist((col - col.mean()) / col.std(ddof=1), bins=40, range=(-5, 5), density=True, histtype="step",
                         color=color, label=f"B = {b}")
    grid_x = np.linspace(-5, 5, 200)
    hist_ax.plot(grid_x, np.exp(-grid_x ** 2 / 2) / np.sqrt(2 * np.pi), color="black", lw=0.8, label="N(0, 1)")
    hist_ax.set(xlabel="standardized component", ylabel="density", yscale="log", ylim=(1e-3, None))
    hist_ax.set_title(f"component {int(arrays[unit]['grid_component'][0])} by B", fontsize=7)
    hist_ax.legend(fontsize=6)


def _draw_grad_hist(rows: pd.DataFrame, grid: pd.DataFrame, arrays: dict, tol):
    unit = sorted(arrays)[0] if arrays else None

    def draw(caption, png, pdf):
        samples = arrays[unit]["samples"] if unit else np.zeros((0, 0))
        comps = arrays[unit]["components"] if unit else []
        names = rows[rows["unit"] == unit].set_index("component")["param"] if unit else {}
        extra = 3 if len(grid) else 0
        fig, axes = plots.panels(samples.shape[1] + 2 + extra, 2.6, 2.8)
        if extra:
            _draw_batch_sizes(axes[-3:], grid[grid["unit"] == unit] if "unit" in grid else grid, arrays, tol)
            axes = axes[:-3]
        for ax, col, comp in zip(axes, samples.T, comps):
            ax.hist(col, bins=30, density=True, color="tab:blue", alpha=0.6)
            mu, sd = col.mean(), col.std(ddof=1)
            xs = np.linspace(col.min(), col.max(), 200)
            ax.plot(xs, np.exp(-0.5 * ((xs - mu) / sd) ** 2) / (sd * np.sqrt(2 * np.pi)), color="tab:red",
                    lw=1, label="Gaussian fit")
            ax.axvline(0, color="black", lw=0.6, ls=":")
            ax.set_title(f"{names[comp]}\nmean/sd {mu / sd:+.2f}", fontsize=7)
            ax.set_xlabel("minibatch gradient component (loss per weight)", fontsize=7)
            ax.set_ylabel("density")
            ax.tick_params(labelsize=6)
        moving = rows[rows["sd"] > 0]
        kurt_ax, ratio_ax = axes[-2], axes[-1]
        kurt_ax.hist(moving["excess_kurtosis"], bins=30, color="tab:green")
        kurt_ax.axvline(0, color="black", lw=0.8)
        for t in (-tol.grad_kurtosis_max, tol.grad_kurtosis_max):
            kurt_ax.axvline(t, color="grey", ls="--", lw=0.8)
        kurt_ax.set_xlabel("excess kurtosis per component")
        kurt_ax.set_ylabel("components")
        kurt_ax.set_title(f"normality over {len(moving)} components", fontsize=7)
        ratio_ax.hist(moving["mean_over_sd"], bins=30, color="tab:purple")
        ratio_ax.axvline(tol.grad_mean_over_sd_max, color="grey", ls="--", lw=0.8, label="claim threshold")
        ratio_ax.set_xlabel("|mean| / sd per component")
        ratio_ax.set_ylabel("components")
        ratio_ax.legend(fontsize=6)
        if len(axes) > 2:
            axes[0].legend(fontsize=6)
        plots.save(fig, caption, png, pdf)
    return draw


def _split(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows at the run's minibatch size and those of the batch-size grid."""
    sample = rows["sample"] if "sample" in rows else pd.Series(RUN_BATCH, index=rows.index)
    return rows[sample == RUN_BATCH], rows[sample == GRID]


def grad_hist(inp: Inputs) -> Outcome:
    rows, grid = _split(inp.analyses)
    setup = _setup(rows, f"{int(rows['batches'].iloc[0])} minibatches of {int(rows['batch_size'].iloc[0])} at the "
                         f"final weights (final train err {rows['train_err_final'].max():.3f}), "
                         f"{rows.groupby('unit').size().max()} random weight components per net, "
                         f"{rows['unit'].nunique()} net(s)")
    if len(grid):
        setup += (f"; minibatch sizes {', '.join(f'{b:g}' for b in sorted(grid['batch_size'].unique()))} from one pass "
                  f"of per-example gradients")
    claims = _gaussian_claims(rows, inp.tol) + _batch_size_claims(grid, inp.tol)
    return Outcome(inp.analyses.reset_index(drop=True), claims, _draw_grad_hist(rows, grid, inp.arrays, inp.tol), setup)


# --- t3-landscape ----------------------------------------------------------------------------

def landscape_analysis(runs, cfg: dict, seed: int) -> Analysis:
    """Training error and loss of w_lambda over the simplex grid of the unit's three
    minimizers, on their common training subset with the labels they were trained on."""
    if len(runs) != 3 or len({(r.spec.data_seed, r.spec.N, r.spec.labels) for r in runs}) != 1:
        raise ValueError(f"t3-landscape needs three minimizers of one training set, got "
                         f"{[r.spec.run_id for r in runs]}")
    lead = runs[0]
    lambdas = L.simplex_grid(int(cfg["grid"]))
    loss, err = L.simplex_errors(lead.model, [L.weights(r.model) for r in runs], lambdas, lead.x, lead.y)
    table = pd.DataFrame({"l1": lambdas[:, 0], "l2": lambdas[:, 1], "l3": lambdas[:, 2],
                          "train_err": err.cpu().numpy(), "train_loss": loss.cpu().numpy()})
    return Analysis(table.assign(**_run_fields(lead), seeds=",".join(str(r.spec.seed) for r in runs)))


def flat_region(rows: pd.DataFrame, epsilon: float) -> pd.DataFrame:
    """Per grid point: whether its train error is within epsilon of the mean train error of
    its unit's three vertices (the minimizers themselves)."""
    vertex = rows[rows[["l1", "l2", "l3"]].max(axis=1) == 1.0].groupby("unit")["train_err"].mean()
    rows = rows.assign(vertex_err=rows["unit"].map(vertex))
    return rows.assign(flat=(rows["train_err"] - rows["vertex_err"]).abs() <= epsilon)


def flat_shares(points: pd.DataFrame) -> pd.DataFrame:
    return points.groupby(["unit", "dataset", "labels"], as_index=False).agg(
        share=("flat", "mean"), vertex_err=("vertex_err", "first"), points=("flat", "size"))


LANDSCAPE_CLAIMS = {"cifar10": "t3-landscape:flatter-natural-cifar10", "mnist": "t3-landscape:flatter-natural-mnist"}


def _mean_se(values: pd.Series) -> tuple[float, float]:
    """Mean over minima and its standard error (0 for a single minimum)."""
    n = len(values)
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0


def flatter_natural(asked: str, used: str, shares: pd.DataFrame, tol, same_as: list[str]) -> dict:
    """memo073 Figs 11-12: the natural-label flat share against the random-label one, over
    units (triples of minimizers) as replicates: held if natural's mean share exceeds
    random's by more than minima_se_k standard errors of the difference, refuted if random's
    exceeds natural's by as much, else within noise. One triple per label has no spread to
    read a difference against: the grid cannot test it (the shares' ratio is reported)."""
    cid = LANDSCAPE_CLAIMS[asked]
    text = f"{asked}: flat low-error region over the simplex larger for natural than for random labels"
    sel = shares[shares["dataset"] == used]
    nat, rnd = (sel[sel["labels"] == lab]["share"] for lab in LABELS)
    shared = (f"; the same units as {', '.join(same_as)} (all stand in as {used}): not independent evidence"
              if same_as else "")
    if nat.empty or rnd.empty:
        return C.untestable(cid, text, f"{len(nat)} natural and {len(rnd)} random-label unit(s) on {used}",
                            "needs units of both label kinds" + shared)
    (mn, sn), (mr, sr) = _mean_se(nat), _mean_se(rnd)
    need = tol.minima_se_k * np.hypot(sn, sr)
    ratio = mn / mr if mr > 0 else float("inf")
    measured = (f"share of simplex within {tol.landscape_epsilon:g} of the vertices' train error: natural "
                f"{mn:.3f} +- {sn:.3f} ({len(nat)} unit(s)), random {mr:.3f} +- {sr:.3f} ({len(rnd)} unit(s)); "
                f"difference {mn - mr:+.3f}, ratio {ratio:.2f}")
    if min(len(nat), len(rnd)) < 2:
        return C.untestable(cid, text, measured, "needs two triples of minimizers per label, so that the difference "
                            "has a standard error" + shared)
    why = None if abs(mn - mr) > need else C.WITHIN_NOISE
    return C.claim(cid, text, mn - mr > need, measured,
                   f"held if natural exceeds random by more than minima_se_k {tol.minima_se_k:g} standard errors of the "
                   f"difference over units ({need:.3f}), refuted if random exceeds natural by as much" + shared,
                   inconclusive=why)


def simplex_xy(points: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The simplex embedded in the plane: w1 at (0, 0), w2 at (1, 0), w3 at (1/2, sqrt 3 / 2)."""
    return (points["l2"] + points["l3"] / 2).to_numpy(), (points["l3"] * np.sqrt(3) / 2).to_numpy()


def _draw_landscape(points: pd.DataFrame, inp: Inputs):
    import matplotlib.tri as mtri

    panels_of = [(d, lab) for d in dict.fromkeys(points["dataset"]) for lab in LABELS
                 if ((points["dataset"] == d) & (points["labels"] == lab)).any()]

    def draw(caption, png, pdf):
        fig, axes = plots.panels(len(panels_of), 3.6, 3.4)
        for ax, (d, lab) in zip(axes, panels_of):
            sel = points[(points["dataset"] == d) & (points["labels"] == lab)]
            mean = sel.groupby(["l1", "l2", "l3"], as_index=False)[["train_err", "flat"]].mean()
            x, y = simplex_xy(mean)
            tri = mtri.Triangulation(x, y)
            filled = ax.tricontourf(tri, 1 - mean["train_err"], levels=np.linspace(0, 1, 21), cmap="viridis")
            ax.tricontour(tri, mean["flat"].astype(float), levels=[0.5], colors="white", linewidths=0.8)
            for (vx, vy), name in zip([(0, 0), (1, 0), (0.5, np.sqrt(3) / 2)], ("w1", "w2", "w3")):
                ax.annotate(name, (vx, vy), fontsize=7, ha="center", va="top" if vy == 0 else "bottom")
            ax.set_aspect("equal")
            ax.set_xlim(-0.08, 1.08)
            ax.set_ylim(-0.1, 0.98)
            ax.set_axis_off()
            n_units = sel["unit"].nunique()
            ax.set_title(f"{d} (for {', '.join(stands_for(inp, d))}), {lab} labels\n"
                         f"{'mean of ' + str(n_units) + ' units; ' if n_units > 1 else ''}white: flat region "
                         f"(within {inp.tol.landscape_epsilon:g})", fontsize=7)
            fig.colorbar(filled, ax=ax, shrink=0.8, label="train accuracy")
        plots.save(fig, caption, png, pdf)
    return draw


def landscape(inp: Inputs) -> Outcome:
    rows = inp.analyses.drop_duplicates(["unit", "l1", "l2", "l3"])  # a unit two asked sets share counts once
    points = flat_region(rows, inp.tol.landscape_epsilon)
    x, y = simplex_xy(points)
    points = points.assign(x=x, y=y).reset_index(drop=True)
    shares = flat_shares(points)
    claims = [flatter_natural(a, u, shares, inp.tol, [o for o in stands_for(inp, u) if o != a])
              for a, u in asked_and_used(inp)]
    grid = int(np.round(1 / points.loc[points["l1"] > 0, "l1"].min())) + 1
    setup = _setup(points, f"{grid} grid points per edge ({points.groupby('unit').size().max()} on the simplex); "
                           f"{shares['unit'].nunique()} distinct unit(s) of three minimizers (seeds "
                           f"{points['seeds'].iloc[0]} on seed {points['seeds'].iloc[0].split(',')[0]}'s subset)")
    return Outcome(points, claims, _draw_landscape(points, inp), setup, {"flat_shares": shares.to_dict("records")})


# --- t3-flatness -----------------------------------------------------------------------------

# memo073 Table 1 (mean +- sd of the flatness radius), as published: (data set, parameters, labels).
PUBLISHED = {("mnist", "all parameters", "natural"): (45.4, 2.7), ("mnist", "all parameters", "random"): (6.9, 1.0),
             ("mnist", "top layer", "natural"): (15.0, 1.7), ("mnist", "top layer", "random"): (3.0, 0.1),
             ("cifar10", "all parameters", "natural"): (17.0, 2.4), ("cifar10", "all parameters", "random"): (5.7, 1.0),
             ("cifar10", "top layer", "natural"): (19.5, 4.0), ("cifar10", "top layer", "random"): (12.1, 2.6)}


def flatness_analysis(runs, cfg: dict, seed: int) -> Analysis:
    """Flatness radius (eq. 16, I = training error) of one net along ``directions`` random
    unit directions over all its parameters and over its top layer. The directions come
    from ``seed`` alone, so nets of one architecture are probed along the same ones."""
    (run,) = runs
    params = L.weights(run.model)
    gen = torch.Generator().manual_seed(int(seed))
    count = int(cfg["directions"])
    frames = []
    for pset, names in zip(PARAM_SETS, (list(params), L.top_layer(params))):
        dirs = L.unit_directions(params, names, count, gen)
        radius, censored, base = L.flatness_radius(run.model, run.x, run.y, dirs, float(cfg["epsilon"]),
                                                   float(cfg["r_max"]), float(cfg["r_tol"]))
        frames.append(pd.DataFrame({"params": pset, "direction": np.arange(count), "radius": radius,
                                    "censored": censored, "base_err": base,
                                    "dims": sum(params[k].numel() for k in names)}))
    table = pd.concat(frames, ignore_index=True)
    return Analysis(table.assign(**_run_fields(run), epsilon=float(cfg["epsilon"]), r_max=float(cfg["r_max"])))


def radius_columns(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (data set, labels, parameter set): mean and sd of the radius over all directions,
    and the standard error of the mean: over nets where there are several (minima differ
    more than directions do), else over the directions of the one net."""
    per_net = rows.groupby(["dataset", "labels", "params", "unit"])["radius"].mean()
    out = rows.groupby(["dataset", "labels", "params"]).agg(
        radius_mean=("radius", "mean"), radius_sd=("radius", "std"), directions=("radius", "size"),
        nets=("unit", "nunique"), censored=("censored", "sum")).reset_index()
    net_se = per_net.groupby(["dataset", "labels", "params"]).agg(lambda v: v.std(ddof=1) / np.sqrt(len(v)))
    dir_se = out["radius_sd"] / np.sqrt(out["directions"])
    out["radius_se"] = np.where(out["nets"] > 1, net_se.reindex(
        pd.MultiIndex.from_frame(out[["dataset", "labels", "params"]])).to_numpy(), dir_se)
    return out


def flatness_table(inp: Inputs, cols: pd.DataFrame) -> pd.DataFrame:
    """Our columns beside memo073 Table 1's, one row per (asked data set, parameters, labels)."""
    rows = []
    for asked, used in asked_and_used(inp):
        for pset in PARAM_SETS:
            for lab in LABELS:
                ours = cols[(cols["dataset"] == used) & (cols["params"] == pset) & (cols["labels"] == lab)]
                pub = PUBLISHED.get((asked, pset, lab), (np.nan, np.nan))
                rows.append({"requested": asked, "dataset": used, "params": pset, "labels": lab,
                             **(ours.iloc[0].drop(["dataset", "labels", "params"]).to_dict() if len(ours) else {}),
                             "published_mean": pub[0], "published_sd": pub[1]})
    return pd.DataFrame(rows)


def natural_flatter(table: pd.DataFrame, inp: Inputs) -> dict:
    cid, text = "t3-flatness:natural-flatter-every-column", ("flatness radius larger for natural than random labels "
                                                              "in every column (data set x parameter set)")
    k = inp.tol.minima_se_k
    parts, ok, against, missing = [], [], [], []
    for (asked, pset), col in table.groupby(["requested", "params"], sort=False):
        nat, rnd = (col[col["labels"] == lab] for lab in LABELS)
        if nat.empty or rnd.empty or nat["radius_mean"].isna().any() or rnd["radius_mean"].isna().any():
            missing.append(f"{asked} {pset}")
            continue
        nat, rnd = nat.iloc[0], rnd.iloc[0]
        need = k * np.hypot(nat["radius_se"], rnd["radius_se"])
        ok.append(nat["radius_mean"] - rnd["radius_mean"] > need)
        against.append(rnd["radius_mean"] - nat["radius_mean"] > need)
        parts.append(f"{asked} {pset}: natural {nat['radius_mean']:.3f} vs random {rnd['radius_mean']:.3f} "
                     f"(need > {need:.3f}; censored at r_max {int(nat['censored'])}/{int(rnd['censored'])})")
    shared = [u for u in dict.fromkeys(table["dataset"]) if len(stands_for(inp, u)) > 1]
    note = (f"; {', '.join(f'{u} stands in for ' + ' and '.join(stands_for(inp, u)) for u in shared)}: "
            "their columns are the same nets") if shared else ""
    if missing:
        return C.untestable(cid, text, "; ".join(parts) or "no column", f"no natural and random "
                            f"radii for {', '.join(missing)}" + note)
    return C.claim(cid, text, all(ok), "; ".join(parts),
                   f"held if in every column the natural-label mean radius exceeds the random one by more than "
                   f"minima_se_k = {k:g} standard errors of the difference, refuted if in one the random radius "
                   f"exceeds the natural one by as much" + note,
                   inconclusive=None if all(ok) or any(against) else C.WITHIN_NOISE)


def _draw_flatness(table: pd.DataFrame):
    def draw(caption, png, pdf):
        asked = list(dict.fromkeys(table["requested"]))
        fig, axes = plots.panels(len(asked), 4.6, 3.6)
        colors = {"natural": "tab:blue", "random": "tab:red"}
        for ax, a in zip(axes, asked):
            sel = table[table["requested"] == a]
            for i, pset in enumerate(PARAM_SETS):
                for j, lab in enumerate(LABELS):
                    row = sel[(sel["params"] == pset) & (sel["labels"] == lab)]
                    if row.empty:
                        continue
                    row = row.iloc[0]
                    x = i * 2.5 + j
                    ax.bar(x - 0.2, row.get("radius_mean", np.nan), 0.4, yerr=row.get("radius_sd", np.nan),
                           color=colors[lab], capsize=2, label=f"ours, {lab}" if i == 0 else None)
                    ax.bar(x + 0.2, row["published_mean"], 0.4, yerr=row["published_sd"], color="white",
                           edgecolor=colors[lab], hatch="//", capsize=2,
                           label=f"memo073 Table 1, {lab}" if i == 0 else None)
            ax.set_xticks([0.5, 3.0], PARAM_SETS)
            ax.set_ylabel("flatness radius r (weight-space distance)")
            ax.set_title(f"{a} (ours on {sel['dataset'].iloc[0]}); bars: mean +- sd over directions", fontsize=7)
            ax.legend(fontsize=6)
        plots.save(fig, caption, png, pdf)
    return draw


def flatness(inp: Inputs) -> Outcome:
    rows = inp.analyses
    table = flatness_table(inp, radius_columns(rows))
    setup = _setup(rows, f"{int(rows.groupby(['unit', 'params']).size().max())} random unit directions per net and "
                         f"parameter set, epsilon {rows['epsilon'].iloc[0]:g} in train error, bisection on "
                         f"[0, {rows['r_max'].iloc[0]:g}] to r_tol after a geometric scan (factor sqrt 2); "
                         f"{rows['unit'].nunique()} net(s)")
    return Outcome(table, [natural_flatter(table, inp)], _draw_flatness(table), setup)
