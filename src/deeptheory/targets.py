"""The data-set targets of EXPERIMENTS.md section A that the pipeline builds so far.

A target names its grid (config ``profiles.<profile>.targets.<id>``), the run specs that
grid expands to, and the analysis that turns those runs' final rows into a table, a
figure and claim rows. Runs are shared: a run that two targets need trains once.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from . import claims as C
from . import plots
from .atomic import write_csv, write_text
from .spec import RunSpec
from .tables import markdown_table, write_table


@dataclass(frozen=True)
class TargetDef:
    id: str
    source: str
    what: str
    sweep: str              # "N" or "width": the axis the grid varies
    analyse: Callable       # (final rows, context) -> list of claim rows
    plot: Callable          # (final rows, context, caption, png, pdf) -> None


@dataclass(frozen=True)
class Context:
    target: str
    dataset: str            # requested in the memos' setup
    dataset_used: str       # what was trained on (offline runs substitute)
    model: str
    N: int | None           # fixed N of a width sweep
    W: int | None           # fixed W of an N sweep
    num_classes: int
    tol: C.Tolerances


def _label(ctx: Context) -> str:
    if ctx.dataset_used == ctx.dataset:
        return ctx.dataset_used
    return f"{ctx.dataset_used} (standing in for {ctx.dataset})"


# --- analyses --------------------------------------------------------------------------

def _err_vs_n(final, ctx):
    pts = C.by_point(final, "N")
    t = ctx.target
    return [
        C.train_near_zero(f"{t}:train-zero-below-W", "train error near 0 for N < W", final,
                          final["N"] < ctx.W, f"N < W = {ctx.W}", ctx.tol),
        C.falls_with(f"{t}:test-falls", "test error falls as N grows", pts, "N", "test_err", ctx.tol),
        C.beyond_threshold(f"{t}:gap-shrinks-above-W", "test-train gap shrinks for N > W", pts, "N", "gap",
                           ctx.W, f"N >= W = {ctx.W}", "falls", ctx.tol),
    ]


def _err_vs_n_random(final, ctx):
    pts = C.by_point(final, "N")
    t, small = ctx.target, ctx.tol.small_n_factor * ctx.W
    return [
        C.at_chance(f"{t}:test-at-chance", "test error at chance for every N", final, ctx.num_classes, ctx.tol),
        C.train_near_zero(f"{t}:train-zero-small-N", "train error near 0 for N << W", final,
                          final["N"] <= small, f"N <= {ctx.tol.small_n_factor:g} W = {small:.0f}", ctx.tol),
        C.beyond_threshold(f"{t}:train-rises-above-W", "train error rises toward chance for N > W", pts, "N",
                           "train_err", ctx.W, f"N >= W = {ctx.W}", "rises", ctx.tol),
    ]


def _err_vs_w(final, ctx):
    pts = C.by_point(final, "n_params")
    t = ctx.target
    return [
        C.train_near_zero(f"{t}:train-zero-above-N", "train error reaches 0 once W >= N", final,
                          final["n_params"] >= ctx.N, f"W >= N = {ctx.N}", ctx.tol),
        C.beyond_threshold(f"{t}:test-no-rise-above-N", "test error does not rise for W > N", pts, "n_params",
                           "test_err", ctx.N, f"W >= N = {ctx.N}", "flat_or_falls", ctx.tol),
    ]


def _err_vs_neurons(final, ctx):
    pts = C.by_point(final, "n_params")
    return [C.beyond_threshold(f"{ctx.target}:test-no-rise-past-N",
                               "test error does not rise past the size of the training set", pts, "n_params",
                               "test_err", ctx.N, f"W >= N = {ctx.N}", "flat_or_falls", ctx.tol)]


# --- figures ---------------------------------------------------------------------------

def _plot_n(final, ctx, caption, png, pdf, chance=None):
    plots.error_sweep(final, "N", "training-set size N", caption, png, pdf, marker=ctx.W,
                      marker_label=f"N = W = {ctx.W:,}", chance=chance)


def _plot_n_random(final, ctx, caption, png, pdf):
    _plot_n(final, ctx, caption, png, pdf, chance=1 - 1 / ctx.num_classes)


def _plot_w(final, ctx, caption, png, pdf):
    plots.error_sweep(final, "n_params", "number of weights W", caption, png, pdf, marker=ctx.N,
                      marker_label=f"W = N = {ctx.N:,}", scales=("log", "linear"))


def _plot_neurons(final, ctx, caption, png, pdf):
    # The figure's axis is neurons; mark the width whose weight count first reaches N.
    past = final[final["n_params"] >= ctx.N]["n_neurons"]
    plots.error_sweep(final, "n_neurons", "number of neurons (hidden channels)", caption, png, pdf,
                      marker=float(past.min()) if len(past) else None, marker_label=f"first W >= N = {ctx.N:,}")


TARGETS: dict[str, TargetDef] = {t.id: t for t in [
    TargetDef("t3-err-vs-n", "memo073 Fig 1", "train and test error vs N", "N", _err_vs_n, _plot_n),
    TargetDef("t3-err-vs-n-random", "memo073 Fig 2", "train and test error vs N, random labels", "N",
              _err_vs_n_random, _plot_n_random),
    TargetDef("t3-err-vs-w", "memo073 Figs 3, 4", "train and test error vs W at fixed N", "width",
              _err_vs_w, _plot_w),
    TargetDef("m100-err-vs-neurons", "memo100 Fig 4", "train and test error vs number of neurons", "width",
              _err_vs_neurons, _plot_neurons),
]}


# --- grid expansion --------------------------------------------------------------------

def dataset_used(tcfg: dict, substitute: dict | None) -> str:
    return (substitute or {}).get(tcfg["dataset"], tcfg["dataset"])


def check_grid(tid: str, tcfg: dict) -> None:
    """A sweep varies one axis; the other must be a single value (the claims read it)."""
    fixed = "widths" if TARGETS[tid].sweep == "N" else "N"
    if len(tcfg[fixed]) != 1:
        raise ValueError(f"config key profiles.<profile>.targets.{tid}.{fixed} must hold one value "
                         f"(this target sweeps {TARGETS[tid].sweep}), got {tcfg[fixed]}")


def run_specs(tid: str, tcfg: dict, profile: dict, substitute: dict | None = None) -> list[RunSpec]:
    if tid not in TARGETS:
        raise ValueError(f"unknown target {tid!r} in config key profiles.<profile>.targets; known: {sorted(TARGETS)}")
    check_grid(tid, tcfg)
    ds = dataset_used(tcfg, substitute)
    return [spec_for(ds, tcfg["model"], w, n, tcfg["labels"], init, seed, profile)
            for w, n, init, seed in itertools.product(tcfg["widths"], tcfg["N"], tcfg.get("init_scales", [1.0]),
                                                      profile["seeds"])]


def spec_for(dataset, model, width, N, labels, init_scale, seed, profile: dict) -> RunSpec:
    train = profile["train"]
    return RunSpec(dataset=dataset, model=model, width=int(width), N=int(N), labels=labels,
                   label_seed=int(profile["label_seed"]) if labels == "random" else 0, seed=int(seed), init_scale=float(init_scale),
                   lr=float(train["lr"]), momentum=float(train["momentum"]), batch_size=int(train["batch_size"]),
                   max_epochs=int(train["max_epochs"]), image_budget=train.get("image_budget"),
                   stop_at_zero=bool(train.get("stop_at_zero", True)), n_test=profile.get("n_test"),
                   eval_every=int(train.get("eval_every", 5)))


# --- report ----------------------------------------------------------------------------

def load_final(metric_paths) -> pd.DataFrame:
    frames = [pd.read_csv(p) for p in metric_paths]
    allrows = pd.concat(frames, ignore_index=True)
    return allrows[allrows["final"]].reset_index(drop=True)


def report(tid: str, metric_paths, tcfg: dict, claims_cfg: dict, substitute: dict | None,
           outdir: Path) -> pd.DataFrame:
    """Write ``figure.png/.pdf``, ``table.csv/.md`` and ``claims.csv`` for one target."""
    target = TARGETS[tid]
    final = load_final(metric_paths)
    W = int(final["n_params"].iloc[0]) if target.sweep == "N" else None
    N = int(final["N"].iloc[0]) if target.sweep == "width" else None
    num_classes = int(final["num_classes"].iloc[0])
    ctx = Context(tid, tcfg["dataset"], dataset_used(tcfg, substitute), tcfg["model"], N, W, num_classes,
                  C.Tolerances.from_config(claims_cfg))
    outdir = Path(outdir)
    x = "N" if target.sweep == "N" else "n_params"
    pts = C.by_point(final, x)
    if target.sweep == "width":
        pts.insert(0, "width", final.groupby("n_params")["width"].first().reindex(pts["n_params"]).values)
    caption = (f"{tid}: {target.what} ({target.source}). Data: {_label(ctx)}; model {ctx.model}; "
               + (f"W = {W:,} weights; " if W else f"N = {N:,}; ")
               + f"{final['seed'].nunique()} seed(s), final rows of {len(final)} runs.")
    target.plot(final, ctx, caption, outdir / "figure.png", outdir / "figure.pdf")
    pts.insert(0, "dataset", ctx.dataset_used)
    pts.insert(0, "target", tid)
    write_table(pts, outdir / "table.csv", outdir / "table.md", caption)
    rows = pd.DataFrame(target.analyse(final, ctx))
    rows["detail"] = rows["detail"] + f"; data: {_label(ctx)}"
    write_csv(outdir / "claims.csv", rows[["id", "claim", "held", "measured", "detail"]])
    return rows


def gather_claims(paths, out_csv: Path, out_md: Path) -> pd.DataFrame:
    table = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    write_csv(out_csv, table)
    held = int(table["held"].sum())
    write_text(out_md, f"# Claims: {held} of {len(table)} held\n\n" + markdown_table(table))
    return table
