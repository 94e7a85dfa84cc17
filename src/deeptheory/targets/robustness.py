"""Norms, margins and robustness of nets fit to natural and to random labels: memo073 Figs
16 (fan-in l1 norms), 17 (functional margins, l2 norm, init x1 vs x10), 19 and 20 (error on
perturbed training images, eq. 47), and the slides' spectrally normalized margins
(Bartlett, Foster and Telgarsky 2017).

Each target analyses every run alone (its ``analyzer``; the computations are in
``deeptheory.analyses.robustness``). Its build compares runs that differ in one setting
only, labels (natural vs random) or init scale (x1 vs x10), with the same data set, width, N
and seed, hence the same training subset. The memo compares nets that fit their training
set, so only runs whose final evaluation has train error exactly 0 enter a comparison; a run
that did not, or that diverged (NaN loss), is named and left out, and a comparison left
without a pair is inconclusive, with the reason its runs give.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import ticker
from scipy import stats

from .. import claims as C
from .. import plots
from ..analyses import robustness as R
from . import Analysis, Inputs, Outcome, Target

# The registry's entries (deeptheory.targets): plain literals, read without importing this module.
TARGETS = [
    Target(
        id="t3-norms",
        source="memo073 Fig 16",
        what="fan-in l1 norms of the weights per layer, natural vs random labels",
        claims="reported per layer, natural vs random labels (claims: see the verdicts)",
        caption="fan-in l1 norms of the weights per layer, nets fit to natural and to random labels",
        builder="build_norms",
        analyzer="analyze_norms",
        unit="run",
        sweep="grid",
    ),
    Target(
        id="t3-margins",
        source="memo073 Fig 17",
        what="functional margins and l2 norm: natural vs random labels, init x1 vs x10",
        claims="random labels: smaller margin and larger l2 norm; init x10: smaller margin and larger norm than x1",
        caption="functional margins on the training set and the l2 norm of the weights: natural vs random labels, "
                "init x1 vs x10",
        builder="build_margins",
        analyzer="analyze_margins",
        unit="run",
        sweep="grid",
    ),
    Target(
        id="t3-perturb",
        source="memo073 Figs 19, 20, eq. 47",
        what="training error under Gaussian input noise of size gamma, natural vs random labels",
        claims="the random-label net loses accuracy at smaller gamma",
        caption="error on training images plus Gaussian noise of size gamma, nets fit to natural and to random "
                "labels; example images at gamma 0.05 and 0.2",
        builder="build_perturb",
        analyzer="analyze_perturb",
        unit="run",
        sweep="grid",
    ),
    Target(
        id="slides-spectral-margin",
        source='slides "Spectrally-Normalized Margin Bounds" (Bartlett-Foster-Telgarsky 2017)',
        what="margins normalized by the product of spectral norms, natural vs random labels",
        claims="random-label margins are smaller after normalization",
        caption="distribution of training margins divided by the product of the layers' spectral norms, natural vs "
                "random labels",
        builder="build_spectral",
        analyzer="analyze_spectral",
        unit="run",
        sweep="grid",
    ),
]

# What two runs of a comparison share, besides the one setting they differ in.
PAIR_KEYS = ["dataset", "model", "width", "N", "seed", "labels", "init_scale"]
# A run's coordinates and how its training ended (run_table), beside its analysis rows.
RUN_COLUMNS = ["unit", *PAIR_KEYS, "run_id", "n_params", "epoch", "train_err", "train_loss", "status"]


# --- analyses (rule analyze, one run each) -----------------------------------------------

def _summary(prefix: str, values: np.ndarray) -> dict:
    return {f"{prefix}_median": float(np.median(values)), f"{prefix}_mean": float(np.mean(values)),
            f"{prefix}_q10": float(np.quantile(values, 0.1)), f"{prefix}_min": float(np.min(values))}


def _margins(run) -> np.ndarray:
    return R.margins(R.logits(run.model, run.x), run.y).double().cpu().numpy()


def analyze_norms(runs, cfg: dict, seed: int) -> Analysis:
    """Per layer, the fan-in l1 norm of every unit (kept whole for the figure) and their
    mean, max and sd over units."""
    (run,) = runs
    rows, arrays = [], {}
    for k, (name, layer) in enumerate(R.weight_layers(run.model), 1):
        l1 = R.fan_in_l1(layer).double().cpu()
        rows.append({"layer": k, "name": name, "units": len(l1), "fan_in": layer.weight[0].numel(),
                     "l1_mean": float(l1.mean()), "l1_max": float(l1.max()), "l1_sd": float(l1.std(correction=0)),
                     "l1_min": float(l1.min())})
        arrays[f"l1_layer{k}"] = l1.numpy()
    return Analysis(pd.DataFrame(rows), arrays)


def analyze_margins(runs, cfg: dict, seed: int) -> Analysis:
    """Training margins on the trained labels, raw and divided by the product of the layers'
    Frobenius norms; the l2 norm of all parameters."""
    (run,) = runs
    m = _margins(run)
    frob = R.frobenius_norms(run.model)
    scale = float(np.prod(frob))
    row = {"n": len(m), **_summary("margin", m), **_summary("normalized_margin", m / scale),
           "misclassified": float(np.mean(~(m > 0))), "frobenius_product": scale, "l2_norm": R.l2_norm(run.model),
           **{f"frobenius_{k}": f for k, f in enumerate(frob, 1)}}
    return Analysis(pd.DataFrame([row]), {"margin": m, "normalized_margin": m / scale})


def analyze_spectral(runs, cfg: dict, seed: int) -> Analysis:
    """Training margins divided by the product of the layers' spectral norms, each the
    operator norm on the layer's actual input size (``power_iterations`` steps)."""
    (run,) = runs
    m = _margins(run)
    sigmas = R.spectral_norms(run.model, tuple(run.x.shape[1:]), int(cfg["power_iterations"]), seed)
    scale = float(np.prod(sigmas))
    row = {"n": len(m), **_summary("margin", m), **_summary("spectral_margin", m / scale),
           "spectral_product": scale, **{f"sigma_{k}": s for k, s in enumerate(sigmas, 1)}}
    return Analysis(pd.DataFrame([row]), {"margin": m, "spectral_margin": m / scale})


def analyze_perturb(runs, cfg: dict, seed: int) -> Analysis:
    """Eq. 47 at each gamma of ``gammas``, ``draws`` noise draws each, and one training image
    clean and at each gamma of ``examples`` (memo073 Fig 19)."""
    (run,) = runs
    mean, std = run.data.mean, run.data.std
    gammas, draws, subset_seed = [float(g) for g in cfg["gammas"]], int(cfg["draws"]), run.spec.data_seed
    err = R.perturbed_errors(run.model, run.x, run.y, std, gammas, draws, seed, subset_seed)
    clean = float((R.logits(run.model, run.x).argmax(1) != run.y).double().mean())
    table = pd.DataFrame({"gamma": gammas, "err_mean": err.mean(0), "err_sd": err.std(0, ddof=1) if draws > 1 else 0.0,
                          "draws": draws, "clean_err": clean})
    examples = [float(g) for g in cfg["examples"]]
    return Analysis(table, {"examples": R.example_images(run.x[0], mean, std, examples, seed, subset_seed),
                            "example_gammas": np.array(examples)})


# --- the runs a build compares -----------------------------------------------------------

def run_table(inp: Inputs) -> pd.DataFrame:
    """One row per run: its grid coordinates and how its training ended (status 'fit':
    train error exactly 0; 'diverged': NaN or infinite loss; 'did not train': its loss never
    left ln(classes); else 'not fit')."""
    final = C.final_rows(inp.runs)
    out = final[PAIR_KEYS + ["run_id", "n_params", "epoch", "train_err", "train_loss"]].reset_index(drop=True)
    loss = out["train_loss"].astype(float)
    out["status"] = np.select([~np.isfinite(loss), out["train_err"] == 0, C.did_not_train(final, inp.tol)],
                              ["diverged", "fit", "did not train"], "not fit")
    return out


def with_runs(inp: Inputs) -> pd.DataFrame:
    """The analysis rows, each with its run's coordinates and status."""
    return inp.analyses.merge(run_table(inp), left_on="unit", right_on="run_id", validate="many_to_one")


def _side(vary: str, value) -> str:
    return f"{value} labels" if vary == "labels" else f"init x{float(value):g}"


def pairs(runs: pd.DataFrame, vary: str, a, b) -> pd.DataFrame:
    """Runs with ``vary == a`` side by side (suffix _a) with their partner at ``vary == b``
    (suffix _b): the same in every other key of PAIR_KEYS."""
    keys = [k for k in PAIR_KEYS if k != vary]
    return runs[runs[vary] == a].merge(runs[runs[vary] == b], on=keys, suffixes=("_a", "_b"))


def _why_out(row, side: str, col: str) -> str | None:
    status = row[f"status_{side}"]
    if status == "diverged":
        return f"{row[f'run_id_{side}']}: diverged (final train loss {row[f'train_loss_{side}']})"
    if status == "did not train":
        return (f"{row[f'run_id_{side}']}: did not train (train loss {row[f'train_loss_{side}']:.4f} ~ ln(classes), "
                f"train err {row[f'train_err_{side}']:.4f})")
    if status != "fit":
        return (f"{row[f'run_id_{side}']}: did not reach train error 0 (final train err "
                f"{row[f'train_err_{side}']:.4f} at epoch {row[f'epoch_{side}']})")
    if not np.isfinite(row[f"{col}_{side}"]):
        return f"{row[f'run_id_{side}']}: {col} is {row[f'{col}_{side}']}"
    return None


def usable(both: pd.DataFrame, col: str) -> tuple[pd.DataFrame, list[str]]:
    """The pairs whose two runs fit and have a finite ``col``, and why each other pair is out."""
    reasons = [[r for r in (_why_out(row, "a", col), _why_out(row, "b", col)) if r] for _, row in both.iterrows()]
    keep = [not r for r in reasons]
    return both[keep], sorted({r for rs in reasons for r in rs})


def _left_out(reasons: list[str]) -> str:
    return "no run left out" if not reasons else "left out: " + "; ".join(reasons)


def _pair_name(row, vary: str) -> str:
    """A pair by what its two runs share besides the seed: the other setting of the two."""
    other = f"{row['labels']} labels" if vary == "init_scale" else f"init x{float(row['init_scale']):g}"
    return f"seed {row['seed']}, {other}"


def _init_scales(runs: pd.DataFrame) -> tuple[float, float] | None:
    scales = sorted(runs["init_scale"].unique())
    return (scales[0], scales[-1]) if len(scales) > 1 else None


def fit_pairs(cid: str, text: str, runs: pd.DataFrame, vary: str, a, b, col: str):
    """The pairs (``vary == a`` vs ``vary == b``) of runs that both fit with a finite
    ``col``, and why every other pair is out; or, where none is left, the claim row that
    says why it is inconclusive: (pairs, reasons, None) or (None, reasons, claim row)."""
    side_a, side_b = _side(vary, a), _side(vary, b)
    if a == b:
        return None, [], C.untestable(cid, text, f"the grid has one {vary} only ({side_a})",
                                      f"it needs runs with two values of {vary}, alike otherwise")
    both = pairs(runs, vary, a, b)
    if both.empty:
        return None, [], C.untestable(cid, text, f"no pair of runs with {side_a} and {side_b}",
                                      f"it needs runs with {side_a} and with {side_b}, alike otherwise")
    ok, reasons = usable(both, col)
    if ok.empty:
        return None, reasons, C.untestable(cid, text, f"no pair of {side_a} and {side_b} runs that both fit",
                                           _left_out(reasons), reason=_why_unfit(both))
    return ok, reasons, None


def _why_unfit(both: pd.DataFrame) -> str:
    """The reason no pair fits: the worst status among the pairs' runs (a dead or diverged
    net before one that is merely still short of zero at its cap)."""
    statuses = set(both["status_a"]) | set(both["status_b"])
    for status, reason in (("did not train", C.DID_NOT_TRAIN), ("diverged", C.DIVERGED), ("not fit", C.NOT_CONVERGED)):
        if status in statuses:
            return reason
    return C.UNTESTABLE


def at_least(cid: str, text: str, runs: pd.DataFrame, vary: str, larger, smaller, col: str, factor: float,
             what: str) -> dict:
    """In every pair of fit runs that differ only in ``vary``, ``col`` of the run with
    ``vary == larger`` is positive and at least ``factor`` times that of its partner with
    ``vary == smaller``."""
    ok, reasons, untestable = fit_pairs(cid, text, runs, vary, larger, smaller, col)
    if untestable:
        return untestable
    big, small = _side(vary, larger), _side(vary, smaller)
    a, b = ok[f"{col}_a"], ok[f"{col}_b"]
    held = bool(((a > 0) & (a >= factor * b)).all())
    measured = "; ".join(f"{_pair_name(r, vary)}: {big} {r[f'{col}_a']:.4g}, {small} {r[f'{col}_b']:.4g} "
                         f"(ratio {r[f'{col}_a'] / r[f'{col}_b']:.3f})" for _, r in ok.iterrows())
    return C.claim(cid, text, held, f"{what}: {measured}",
                   f"held if in every pair of fit runs the {big} value is positive and at least {factor:g} x the "
                   f"{small} one; fails otherwise; {_left_out(reasons)}")


def _setup(runs: pd.DataFrame) -> str:
    def vals(col, fmt="{}"):
        return ", ".join(fmt.format(v) for v in sorted(runs[col].unique()))
    return (f"model {vals('model')}, width {vals('width')} (W = {vals('n_params', '{:,}')}), N = {vals('N', '{:,}')}; "
            f"labels {vals('labels')}; init x{vals('init_scale', '{:g}')}; seed(s) {vals('seed')}; "
            f"{runs['run_id'].nunique()} runs analysed at their final weights")


def _run_label(runs: pd.DataFrame) -> pd.Series:
    """Legend label of each row's run: its labels, and its init scale where the grid has several."""
    label = runs["labels"].astype(str) + " labels"
    if runs["init_scale"].nunique() > 1:
        label = label + ", init x" + runs["init_scale"].map("{:g}".format)
    if runs["seed"].nunique() > 1:
        label = label + ", seed " + runs["seed"].astype(str)
    return label


# --- t3-norms (memo073 Fig 16) -----------------------------------------------------------

def norms_per_run(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per run: the product over layers of the per-layer max and mean fan-in l1 norms.
    The product of the max is the product of the layers' l-infinity operator norms (a
    convolution's is its largest kernel l1 norm): the bound that per-unit l1 norms give on the
    net's l-infinity Lipschitz constant and, times the number of class scores, on its l1 path
    norm (memo073 section 9.4)."""
    agg = rows.groupby("unit").agg(l1_max_product=("l1_max", "prod"), l1_mean_product=("l1_mean", "prod"),
                                   layers=("layer", "count"))
    return rows.drop_duplicates("unit")[RUN_COLUMNS].merge(agg, left_on="unit", right_index=True)


def layers_larger(cid: str, text: str, rows: pd.DataFrame, per_run: pd.DataFrame, tol) -> dict:
    """Per pair of fit runs (random vs natural labels): the layers whose mean fan-in l1 norm
    is at least norm_larger_factor x larger with random labels; held if more than
    norm_layer_share of the layers are, in every pair."""
    factor, share = tol.norm_larger_factor, tol.norm_layer_share
    ok, reasons, untestable = fit_pairs(cid, text, per_run, "labels", "random", "natural", "l1_mean_product")
    if untestable:
        return untestable
    verdicts, parts = [], []
    for _, pair in ok.iterrows():
        layer_a = rows[rows["unit"] == pair["unit_a"]].set_index("layer")["l1_mean"]
        layer_b = rows[rows["unit"] == pair["unit_b"]].set_index("layer")["l1_mean"]
        larger = layer_a >= factor * layer_b
        verdicts.append(larger.sum() > share * len(larger))
        parts.append(f"seed {pair['seed']}: {int(larger.sum())} of {len(larger)} layers (random / natural mean "
                     "by layer " + ", ".join(f"{k}: {layer_a[k] / layer_b[k]:.2f}" for k in larger.index) + ")")
    return C.claim(cid, text, all(verdicts), "; ".join(parts),
                   f"held if in every pair of fit runs more than {share:g} of the layers have a random-label mean "
                   f"fan-in l1 norm at least {factor:g} x the natural-label one; {_left_out(reasons)}")


def norms_claims(rows: pd.DataFrame, tol) -> list[dict]:
    per_run = norms_per_run(rows)
    return [
        at_least("t3-norms:random-larger-product", "random labels: larger product over layers of the max fan-in "
                 "l1 norm", per_run, "labels", "random", "natural", "l1_max_product", tol.norm_larger_factor,
                 "product over layers of the per-layer max fan-in l1 norm"),
        layers_larger("t3-norms:random-larger-by-layer", "random labels: larger mean fan-in l1 norm in most layers",
                      rows, per_run, tol),
    ]


def _draw_norms(rows: pd.DataFrame, arrays: dict):
    labels = dict(zip(rows["unit"], _run_label(rows)))
    units = pd.concat([pd.DataFrame({"layer": int(k[len("l1_layer"):]), "l1": v, "run": labels[u]})
                       for u, arr in arrays.items() for k, v in arr.items() if k.startswith("l1_layer")])
    per_layer = rows.assign(run=_run_label(rows)).melt(id_vars=["run", "layer"], value_vars=["l1_mean", "l1_max"],
                                                       var_name="statistic", value_name="l1")

    def draw(caption, png, pdf):
        fig, axes = plots.panels(2, 4.8, 3.8)
        sns.boxplot(data=units, x="layer", y="l1", hue="run", ax=axes[0], fliersize=2)
        axes[0].set_yscale("log")
        axes[0].set_ylabel("fan-in l1 norm of a unit, sum of |w| (log)")
        axes[0].set_title("every unit (channel) of each layer", fontsize=8)
        sns.lineplot(data=per_layer, x="layer", y="l1", hue="run", style="statistic", markers=True, ax=axes[1])
        axes[1].set_yscale("log")
        axes[1].set_ylabel("fan-in l1 norm (log)")
        axes[1].set_title("mean and max over the units of a layer", fontsize=8)
        axes[1].set_xticks(sorted(rows["layer"].unique()))
        for ax in axes:
            ax.set_xlabel("layer (last: the convolution giving the class scores)")
            ax.legend(fontsize=7)
        plots.save(fig, caption, png, pdf)
    return draw


def build_norms(inp: Inputs) -> Outcome:
    rows = with_runs(inp)
    table = rows.merge(norms_per_run(rows)[["unit", "l1_max_product", "l1_mean_product"]], on="unit")
    return Outcome(table, norms_claims(rows, inp.tol), _draw_norms(rows, inp.arrays),
                   _setup(rows) + "; fan-in l1 of the weights only, biases excluded")


# --- t3-margins (memo073 Fig 17) ---------------------------------------------------------

def margins_claims(runs: pd.DataFrame, tol) -> list[dict]:
    """memo073 Fig 17: random labels give a smaller margin and a larger l2 norm than natural
    labels; init x10 a smaller margin and larger l2 norm than x1 (the grid's largest and
    smallest init scale, with the same labels). The margin compared is the median training
    margin divided by the product of the layers' Frobenius norms: raw margins grow with the
    weights, so a larger net would show a larger raw margin for no other reason."""
    scales = _init_scales(runs)
    lo, hi = scales if scales else (runs["init_scale"].iloc[0],) * 2
    nm, f_m, f_n = "normalized_margin_median", tol.margin_smaller_factor, tol.norm_larger_factor
    what_m = "median of margin / product of the layers' Frobenius norms"
    return [
        at_least("t3-margins:random-smaller-margin", "random labels: smaller normalized margin than natural labels",
                 runs, "labels", "natural", "random", nm, f_m, what_m),
        at_least("t3-margins:random-larger-norm", "random labels: larger l2 norm than natural labels", runs, "labels",
                 "random", "natural", "l2_norm", f_n, "l2 norm of all parameters"),
        at_least("t3-margins:x10-smaller-margin", "larger init (x10): smaller normalized margin than init x1", runs,
                 "init_scale", lo, hi, nm, f_m, what_m),
        at_least("t3-margins:x10-larger-norm", "larger init (x10): larger l2 norm than init x1", runs, "init_scale",
                 hi, lo, "l2_norm", f_n, "l2 norm of all parameters"),
    ]


def _distributions(runs: pd.DataFrame, arrays: dict, keys: list[str]) -> pd.DataFrame:
    """The per-example arrays ``keys`` of every run, long, with the run's legend label
    (non-finite values, those of a diverged net, dropped)."""
    labels = dict(zip(runs["unit"], _run_label(runs)))
    return pd.concat([pd.DataFrame({**{k: np.asarray(arrays[u][k], float) for k in keys}, "run": labels[u]})
                      for u in runs["unit"]], ignore_index=True).replace([np.inf, -np.inf], np.nan)


def _draw_margins(runs: pd.DataFrame, arrays: dict):
    long = _distributions(runs, arrays, ["margin", "normalized_margin"])
    norms = runs.assign(run=_run_label(runs))

    def draw(caption, png, pdf):
        fig, axes = plots.panels(3, 4.4, 3.8)
        sns.ecdfplot(data=long.dropna(subset=["normalized_margin"]), x="normalized_margin", hue="run", ax=axes[0])
        axes[0].set_xlabel("margin / product of the layers' Frobenius norms")
        sns.ecdfplot(data=long.dropna(subset=["margin"]), x="margin", hue="run", ax=axes[1])
        axes[1].set_xlabel("raw margin f_y(x) - max_{j != y} f_j(x) (logit units)")
        for ax in axes[:2]:
            ax.axvline(0, color="grey", lw=0.8, ls=":")
            ax.set_ylabel("share of training examples below")
            ax.xaxis.set_major_locator(ticker.MaxNLocator(5))
        sns.barplot(data=norms, x="run", y="l2_norm", hue="run", legend=False, ax=axes[2])
        axes[2].set_ylabel("l2 norm of all parameters")
        axes[2].set_xlabel("")
        axes[2].tick_params(axis="x", labelrotation=20, labelsize=7)
        for _, r in norms.iterrows():
            if r["status"] != "fit":
                axes[2].annotate(r["status"], (list(norms["run"]).index(r["run"]), 0), ha="center", va="bottom",
                                 fontsize=7, color="firebrick")
        plots.save(fig, caption, png, pdf)
    return draw


def build_margins(inp: Inputs) -> Outcome:
    runs = with_runs(inp)
    return Outcome(runs, margins_claims(runs, inp.tol), _draw_margins(runs, inp.arrays),
                   _setup(runs) + "; margins on the trained labels; Frobenius norms of the weights only (biases stay "
                   "in the net, so the normalized margin is scale-invariant exactly for bias-free layers)")


# --- slides-spectral-margin (Bartlett, Foster and Telgarsky 2017) ------------------------

def stochastically_smaller(cid: str, text: str, runs: pd.DataFrame, arrays: dict, tol) -> dict:
    """One-sided Mann-Whitney U test per pair of fit runs: the random-label normalized
    margins lie below the natural-label ones, p < margin_test_p in every pair. Both sets are
    margins on one training subset; the test treats them as independent samples."""
    ok, reasons, untestable = fit_pairs(cid, text, runs, "labels", "random", "natural", "spectral_margin_median")
    if untestable:
        return untestable
    ps = [float(stats.mannwhitneyu(arrays[r["unit_a"]]["spectral_margin"], arrays[r["unit_b"]]["spectral_margin"],
                                   alternative="less").pvalue) for _, r in ok.iterrows()]
    return C.claim(cid, text, all(p < tol.margin_test_p for p in ps),
                   "; ".join(f"seed {r['seed']}: one-sided Mann-Whitney p = {p:.3g} (n = {int(r['n_a'])}, "
                             f"{int(r['n_b'])})" for p, (_, r) in zip(ps, ok.iterrows())),
                   f"held if p < {tol.margin_test_p:g} in every pair of fit runs (alternative: random-label margins "
                   f"stochastically smaller); {_left_out(reasons)}")


def spectral_claims(runs: pd.DataFrame, arrays: dict, tol) -> list[dict]:
    return [
        at_least("slides-spectral-margin:random-smaller-median", "random labels: smaller median spectrally normalized "
                 "margin", runs, "labels", "natural", "random", "spectral_margin_median", tol.margin_smaller_factor,
                 "median of margin / product of the layers' spectral norms"),
        stochastically_smaller("slides-spectral-margin:random-stochastically-smaller", "random labels: spectrally "
                               "normalized margins stochastically smaller", runs, arrays, tol),
    ]


def _draw_spectral(runs: pd.DataFrame, arrays: dict):
    long = _distributions(runs, arrays, ["spectral_margin"]).dropna()

    def draw(caption, png, pdf):
        fig, axes = plots.panels(2, 4.8, 3.8)
        sns.histplot(data=long, x="spectral_margin", hue="run", stat="density", common_norm=False, element="step",
                     ax=axes[0])
        axes[0].set_ylabel("density over training examples")
        sns.ecdfplot(data=long, x="spectral_margin", hue="run", ax=axes[1])
        axes[1].set_ylabel("share of training examples below")
        for ax in axes:
            ax.set_xlabel("margin / product of the layers' spectral norms")
            ax.axvline(0, color="grey", lw=0.8, ls=":")
        plots.save(fig, caption, png, pdf)
    return draw


def build_spectral(inp: Inputs) -> Outcome:
    runs = with_runs(inp)
    iters = inp.cfg.get("analysis", {}).get("power_iterations")
    return Outcome(runs, spectral_claims(runs, inp.arrays, inp.tol), _draw_spectral(runs, inp.arrays),
                   _setup(runs) + f"; spectral norms of the weights only, by {iters} power iterations on each layer's "
                   "input size; the (2,1)-norm factor of the slides' R_A left out")


# --- t3-perturb (memo073 Figs 19, 20, eq. 47) --------------------------------------------

def loss_of_accuracy(rows: pd.DataFrame, rise: float) -> pd.DataFrame:
    """One row per run: gamma_star, the smallest grid gamma whose mean error exceeds the
    clean training error by more than ``rise`` (NaN where none does), and the grid's largest
    gamma."""
    def first(g):
        over = g[g["err_mean"] > g["clean_err"] + rise]
        return pd.Series({"gamma_star": over["gamma"].min() if len(over) else np.nan, "gamma_max": g["gamma"].max()})
    stars = rows.groupby("unit")[["gamma", "err_mean", "clean_err"]].apply(first)
    return rows.drop_duplicates("unit")[RUN_COLUMNS + ["clean_err"]].merge(stars, left_on="unit", right_index=True)


def perturb_claims(rows: pd.DataFrame, tol) -> list[dict]:
    """memo073 section 9.5: the random-label net "has slightly worse robustness", read as: it
    loses accuracy at a smaller gamma. Per pair of fit runs, gamma_star (error above clean
    by more than perturb_rise) of the random-label net is smaller than the natural-label net's;
    a random-label net that crosses within the grid while the natural one does not counts as
    smaller. A pair where neither crosses is inconclusive (the grid stops before either
    loses accuracy); equal gamma_star (the grid cannot separate them) is not held."""
    cid, text = "t3-perturb:random-loses-accuracy-first", "the random-label net loses accuracy at a smaller gamma"
    rise = tol.perturb_rise
    ok, reasons, untestable = fit_pairs(cid, text, loss_of_accuracy(rows, rise), "labels", "random", "natural",
                                        "clean_err")
    if untestable:
        return [untestable]
    crossed = ok[ok["gamma_star_a"].notna() | ok["gamma_star_b"].notna()]
    neither = [f"seed {r['seed']}: neither crosses up to gamma = {r['gamma_max_a']:g}" for _, r in ok.iterrows()
               if np.isnan(r["gamma_star_a"]) and np.isnan(r["gamma_star_b"])]
    if crossed.empty:
        return [C.untestable(cid, text, "; ".join(neither),
                             f"it needs a pair of fit runs of which one exceeds its clean error by "
                             f"{rise:g}; {_left_out(reasons)}")]
    star_r = crossed["gamma_star_a"]
    star_n = crossed["gamma_star_b"].fillna(np.inf)
    held = bool((star_r < star_n).all())
    measured = "; ".join(f"seed {r['seed']}: gamma_star random {r['gamma_star_a']:g}, natural {r['gamma_star_b']:g} "
                         f"(clean err {r['clean_err_a']:.3f}, {r['clean_err_b']:.3f})" for _, r in crossed.iterrows())
    return [C.claim(cid, text, held, measured + "".join(f"; {n} (left out: no crossing to compare)" for n in neither),
                    f"gamma_star: the smallest grid gamma whose mean error over the draws exceeds the clean error by "
                    f"more than {rise:g} (nan: none up to the grid's largest); held if the random-label gamma_star is "
                    f"smaller in every pair where one crosses, fails if it is equal or larger; {_left_out(reasons)}")]


def _draw_perturb(rows: pd.DataFrame, arrays: dict, zoom: float, rise: float):
    rows = rows.assign(run=_run_label(rows))
    stars = loss_of_accuracy(rows, rise).assign(run=lambda d: _run_label(d))
    first = sorted(arrays)[0]
    images, gammas = arrays[first]["examples"], arrays[first]["example_gammas"]

    def curves(ax, sel):
        for (run, g), color in zip(sel.groupby("run"), sns.color_palette()):
            ax.plot(g["gamma"], g["err_mean"], marker="o", ms=3, color=color, label=run)
            ax.fill_between(g["gamma"], g["err_mean"] - g["err_sd"], g["err_mean"] + g["err_sd"], color=color,
                            alpha=0.2)
            star = stars.loc[stars["run"] == run, "gamma_star"].iloc[0]
            if np.isfinite(star) and star <= sel["gamma"].max():
                ax.axvline(star, color=color, ls=":", lw=1)
        ax.set_xlabel("gamma (noise sd, pixel units of images in [0, 1])")
        ax.set_ylabel("error on perturbed training images (eq. 47)")
        ax.legend(fontsize=7)

    def draw(caption, png, pdf):
        fig, axes = plots.panels(3, 4.4, 3.8)
        curves(axes[0], rows)
        axes[0].set_title("all gammas (dotted: gamma_star)", fontsize=8)
        curves(axes[1], rows[rows["gamma"] <= zoom])
        axes[1].set_title(f"zoom: gamma <= {zoom:g}", fontsize=8)
        montage = np.concatenate([np.pad(im, ((0, 0), (0, 0), (0, 2)), constant_values=1.0) for im in images], axis=2)
        axes[2].imshow(montage[0] if montage.shape[0] == 1 else montage.transpose(1, 2, 0), cmap="gray", vmin=0, vmax=1)
        width = images.shape[-1] + 2
        axes[2].set_xticks([width * (i + 0.5) for i in range(len(images))],
                           ["clean"] + [f"gamma = {g:g}" for g in gammas], fontsize=7)
        axes[2].set_yticks([])
        axes[2].grid(False)
        axes[2].set_title("a training image, clean and perturbed (memo073 Fig 19)", fontsize=8)
        plots.save(fig, caption, png, pdf)
    return draw


def build_perturb(inp: Inputs) -> Outcome:
    rows = with_runs(inp)
    a = inp.cfg["analysis"]
    table = rows.merge(loss_of_accuracy(rows, inp.tol.perturb_rise)[["unit", "gamma_star"]], on="unit")
    return Outcome(table, perturb_claims(rows, inp.tol), _draw_perturb(rows, inp.arrays, max(a["examples"]),
                                                                        inp.tol.perturb_rise),
                   _setup(rows) + f"; {a['draws']} noise draws per gamma; eps standard Gaussian per pixel, "
                   "no clipping")
