"""Zhang et al.'s (2017) CIFAR-10 architectures with the regularizers off, as two sources
show them: memo073 Table 2 (t3-archs: "despite the network size continuously increases, the
test performance does not drop, but even improves") and the slides' table "Why big models
generalize well?" (slides-zhang-table: "As model complexity grows (p > n), training error
goes down to zero, but test error does not increase").

One row per architecture (model, width and training recipe; mean over seeds), beside the
published row it stands for. The models are in ``deeptheory.models.archs``; the published rows are
matched to runs by (model, recipe), the recipes of config ``profiles.<profile>.recipes``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..models import archs
from .. import claims as C
from .. import plots
from . import Inputs, Outcome, Target

# The registry's entries (deeptheory.targets): plain literals, read without importing this module.
TARGETS = [
    Target(
        id="t3-archs",
        source="memo073 Table 2, section 6.2",
        what="parameter count, train and test accuracy of MLP 1x512, AlexNet, Inception and a Wide ResNet, all "
             "regularizers off",
        claims="every architecture reaches 100% train accuracy (train error exactly 0), and test accuracy does not "
               "fall as the parameter count grows",
        caption="parameter count, train and test accuracy of MLP 1x512, AlexNet, Inception and a Wide ResNet on "
                "CIFAR-10 with all regularizers off (Zhang et al. 2017, Table 1); ours (filled) against the "
                "published values (hollow), accuracy against the number of parameters. The Wide ResNet, whose source "
                "the memo does not give, is WRN-40-4: exactly its 8,949,210 parameters",
        builder="build_t3",
        sweep="grid",
    ),
    Target(
        id="slides-zhang-table",
        source='slides "Why big models generalize well?"',
        what="CudaConvNet with and without regularization, MicroInception, ResNet: parameters, p/n, train loss, test "
             "error",
        claims="without regularizers every model reaches train error 0, and test error does not grow with p/n; the "
               "regularized row is reported beside them",
        caption="CudaConvNet with and without regularization, MicroInception and ResNet on CIFAR-10 (Zhang et al. "
                "2017): test error (left) and train loss (right) against p/n, ours (filled) against the slides' "
                "values (hollow); the regularized CudaConvNet (ours: weight decay only) in green. CudaConvNet is "
                "cuda-convnet's layers-80sec configuration, exactly 145,578 parameters; the ResNet, which the slides "
                "do not specify, is a ResNet-20 at 3x width",
        builder="build_slides",
        sweep="grid",
    ),
]

# memo073 Table 2 (Zhang et al. Table 1): (model, recipe) -> architecture, what ours is where
# the source does not say, params, train accuracy %, test accuracy %.
T3_ROWS = {
    ("mlp", "zhang"): ("MLP 1x512", "", 1_209_866, 100.0, 50.51),
    ("alexnet", "zhang"): ("AlexNet", "", 1_387_786, 100.0, 76.07),
    ("inception", "zhanginception"): ("Inception", "", 1_649_402, 100.0, 85.75),
    ("wrn", "zhang"): ("Wide ResNet", "WRN-40-4", 8_949_210, 100.0, 88.21),
}
# The slides' table: (model, recipe) -> model, ours, params, p/n, train loss, test error, regularized.
SLIDES_ROWS = {
    ("cudaconvnet", "zhang"): ("CudaConvNet", "", 145_578, 2.9, 0.0, 0.23, False),
    ("cudaconvnet", "zhangwd"): ("CudaConvNet (with regularization)", "weight decay only", 145_578, 2.9, 0.34, 0.18,
                                 True),
    ("inception", "zhanginception"): ("MicroInception", "", 1_649_402, 33.0, 0.0, 0.14, False),
    ("resnet", "zhang"): ("ResNet", "ResNet-20 x3", 2_401_440, 48.0, 0.0, 0.13, False),
}


# --- the rows ------------------------------------------------------------------------------

def _published(key: tuple, table: dict, tid: str) -> tuple:
    if key not in table:
        raise ValueError(f"{tid}: no published row for model {key[0]!r} with recipe {key[1]!r}; the rows are "
                         f"{sorted(table)} (deeptheory.targets.archs; the recipes of config profiles.<p>.recipes)")
    return table[key]


def params_at_paper_width(model: str) -> int:
    """Our model's weight count at its paper width on CIFAR-10's 32x32x3 images, the number
    the published one stands beside (a quick run is a narrower net)."""
    from .. import models

    return models.n_params(models.build(model, archs.PAPER_WIDTH[model], (3, 32, 32), 10))


def architectures(final: pd.DataFrame, tol) -> pd.DataFrame:
    """One row per (model, width, recipe): means over seeds, seed sd's of the errors, and
    how many runs interpolated, levelled, were still falling at their cap or diverged."""
    final = final.assign(status=C.fit_status(final, tol))
    keys = ["model", "width", "recipe"]
    rows = final.groupby(keys, sort=False).agg(
        n_params=("n_params", "first"), N=("N", "first"), runs=("run_id", "count"),
        train_err=("train_err", "mean"), train_err_sd=("train_err", "std"), test_err=("test_err", "mean"),
        test_err_sd=("test_err", "std"), train_loss=("train_loss", "mean"), test_loss=("test_loss", "mean"),
        interpolated=("interpolated", "sum"), epochs=("epoch", "mean"), max_train_err=("train_err", "max"),
        n_test=("n_test", "min"),
        **{st.replace(" ", "_"): ("status", lambda s, st=st: int((s == st).sum())) for st in C.STATUSES[1:]})
    rows = rows.fillna({"train_err_sd": 0.0, "test_err_sd": 0.0}).reset_index()
    rows["test_err_se"] = np.sqrt(C.binomial_se(rows["test_err"], rows["n_test"]) ** 2
                                  + rows["test_err_sd"] ** 2 / rows["runs"])
    rows.insert(3, "paper_width", rows["model"].map(archs.PAPER_WIDTH))
    rows.insert(4, "params_at_paper_width", rows["model"].map(params_at_paper_width))
    rows["p_over_n"] = rows["n_params"] / rows["N"]
    rows["train_acc"], rows["test_acc"] = 100 * (1 - rows["train_err"]), 100 * (1 - rows["test_err"])
    rows["all_interpolated"] = rows["interpolated"] == rows["runs"]
    return rows.sort_values("n_params", kind="stable").reset_index(drop=True)


def t3_table(final: pd.DataFrame, tol) -> pd.DataFrame:
    rows = architectures(final, tol)
    pub = [_published((m, r), T3_ROWS, "t3-archs") for m, r in zip(rows["model"], rows["recipe"])]
    rows.insert(0, "architecture", [p[0] for p in pub])
    rows.insert(1, "ours", [p[1] for p in pub])
    rows["params_published"] = [p[2] for p in pub]
    rows["train_acc_published"], rows["test_acc_published"] = [p[3] for p in pub], [p[4] for p in pub]
    return rows


def slides_table(final: pd.DataFrame, tol) -> pd.DataFrame:
    rows = architectures(final, tol)
    pub = [_published((m, r), SLIDES_ROWS, "slides-zhang-table") for m, r in zip(rows["model"], rows["recipe"])]
    rows.insert(0, "architecture", [p[0] for p in pub])
    rows.insert(1, "ours", [p[1] for p in pub])
    rows.insert(2, "regularized", [p[6] for p in pub])
    rows["params_published"], rows["p_over_n_published"] = [p[2] for p in pub], [p[3] for p in pub]
    rows["train_loss_published"], rows["test_err_published"] = [p[4] for p in pub], [p[5] for p in pub]
    return rows


# --- claims --------------------------------------------------------------------------------

def _fit_text(rows: pd.DataFrame) -> str:
    return "; ".join(f"{r.architecture}: max train err {r.max_train_err:.4f}, {int(r.interpolated)}/{int(r.runs)} "
                     f"run(s) at exactly 0, " + ", ".join(f"{int(getattr(r, st.replace(' ', '_')))} {st}"
                                                          for st in C.STATUSES[1:])
                     + f", {r.epochs:.0f} epochs, train loss {r.train_loss:.3g}" for r in rows.itertuples())


def every_run_fits(cid: str, text: str, rows: pd.DataFrame) -> dict:
    """Train error exactly 0 in every run of every row (100% train accuracy: Zhang et al.
    train until it, and so does stopping rule ``zero``). Refuted only by a row whose runs
    that missed it levelled off; a row still falling, bouncing, dead or diverged at its cap
    leaves the claim inconclusive."""
    if rows.empty:
        return C.untestable(cid, text, "no architecture in the grid", "needs at least one run")
    missed = rows[~rows["all_interpolated"]]
    unsettled = {st: int(missed[st.replace(" ", "_")].sum()) for st in C.UNSETTLED}
    levelled = int(missed["levelled"].sum())
    why = None if missed.empty or levelled else C.STATUS_REASON[max(unsettled, key=unsettled.get)]
    return C.claim(cid, text, missed.empty, _fit_text(rows),
                   "refuted if a run levels off with a train error above exactly 0 (100.0% train accuracy)",
                   inconclusive=why)


def _num(v: float) -> str:
    return f"{v:,.0f}" if v >= 1000 else f"{v:.3g}"


def no_rise_with_size(cid: str, text: str, rows: pd.DataFrame, x: str, tol, beside: str = "") -> dict:
    """Test error over the rows sorted by ``x`` (the parameter count, or p/n: the same order
    at one N) does not rise (claims.noise_trend 'flat_or_falls'). Zhang et al. compare
    these nets trained on all of CIFAR-10 (claims.zhang_regime_n images): on fewer, the
    verdict is inconclusive, outside their regime, with the numbers it would have read."""
    if len(rows) < 2:
        return C.untestable(cid, text, f"{len(rows)} architecture(s) in the grid", "needs two architectures")
    rows = rows.sort_values(x, kind="stable")
    held, why, decided = C.noise_trend(rows["test_err"], rows["test_err_se"], tol.noise_z, "flat_or_falls", tol.step)
    n = int(rows["N"].min())
    if n < tol.zhang_regime_n:
        why = C.OUT_OF_REGIME
        decided += f"; trained on N = {n:,} < {tol.zhang_regime_n:,.0f}, the regime of Zhang et al.'s table"
    measured = "test err by " + x + ": " + ", ".join(
        f"{a} ({_num(v)}): {e:.3f} +- {se:.3f}" for a, v, e, se in zip(rows["architecture"], rows[x],
                                                                      rows["test_err"], rows["test_err_se"]))
    return C.claim(cid, text, held, measured + (f"; {beside}" if beside else ""),
                   f"flat_or_falls over the models by size, read against {tol.noise_z:g} standard errors (binomial at "
                   f"n_test, and the seed spread): {decided}", inconclusive=why)


def t3_claims(rows: pd.DataFrame, tol) -> list[dict]:
    return [every_run_fits("t3-archs:train-acc-100", "every architecture reaches 100% train accuracy", rows),
            no_rise_with_size("t3-archs:test-acc-no-fall-with-params",
                              "test accuracy does not fall as the number of parameters grows", rows, "n_params",
                              tol)]


def _beside(reg: pd.DataFrame) -> str:
    if reg.empty:
        return "no regularized row in the grid"
    return "reported beside them: " + "; ".join(
        f"{a}: train loss {loss:.3g} (published {pl:g}), train err {tr:.4f}, test err {te:.3f} (published {pe:g})"
        for a, loss, pl, tr, te, pe in zip(reg["architecture"], reg["train_loss"], reg["train_loss_published"],
                                           reg["train_err"], reg["test_err"], reg["test_err_published"]))


def slides_claims(rows: pd.DataFrame, tol) -> list[dict]:
    plain, reg = rows[~rows["regularized"]], rows[rows["regularized"]]
    return [every_run_fits("slides-zhang-table:train-zero-unregularized",
                           "without regularizers every model reaches train error 0 (train loss ~ 0)", plain),
            no_rise_with_size("slides-zhang-table:test-no-rise-with-p-over-n",
                              "test error does not grow with p/n across the unregularized models", plain,
                              "p_over_n", tol, _beside(reg))]


# --- figures -------------------------------------------------------------------------------

def _ours(ax, rows: pd.DataFrame, x: str, y: str, sd: str | None, colour: str, label: str, marker="o"):
    ax.errorbar(rows[x], rows[y], yerr=None if sd is None else rows[sd], color=colour, marker=marker, ls="-",
                lw=1, ms=5, capsize=3, label=label)


def _published_points(ax, xs, ys, colour: str, label: str, marker="o"):
    ax.plot(xs, ys, color=colour, marker=marker, ls=":", lw=1, ms=6, mfc="none", label=label)


def _names(ax, rows: pd.DataFrame, x: str, y: str) -> None:
    """Each point's architecture, above and below in turn (neighbours along x do not collide)."""
    for i, (a, xv, yv) in enumerate(zip(rows["architecture"], rows[x], rows[y])):
        ax.annotate(a.replace(" (with regularization)", ""), (xv, yv), textcoords="offset points",
                    xytext=(4, 5 if i % 2 == 0 else -10), fontsize=6)


def _draw_t3(rows: pd.DataFrame):
    def draw(caption, png, pdf):
        fig, axes = plots.panels(1, 8.0, 5.2)
        ax = axes[0]
        rows_pct = rows.assign(train_sd=100 * rows["train_err_sd"], test_sd=100 * rows["test_err_sd"])
        _ours(ax, rows_pct, "n_params", "train_acc", "train_sd", "tab:blue", "train, ours")
        _ours(ax, rows_pct, "n_params", "test_acc", "test_sd", "tab:red", "test, ours")
        pub = rows.sort_values("params_published")
        _published_points(ax, pub["params_published"], pub["train_acc_published"], "tab:blue",
                          "train, published (memo073 Table 2)", marker="s")
        _published_points(ax, pub["params_published"], pub["test_acc_published"], "tab:red",
                          "test, published (memo073 Table 2)", marker="s")
        _names(ax, rows, "n_params", "test_acc")
        _names(ax, pub, "params_published", "test_acc_published")
        ax.set_xscale("log")
        ax.set_xlabel("number of parameters (log scale)")
        ax.set_ylabel("accuracy (%)")
        ax.legend(fontsize=7)
        plots.save(fig, caption, png, pdf)
    return draw


def _draw_slides(rows: pd.DataFrame):
    def draw(caption, png, pdf):
        fig, axes = plots.panels(2, 4.8, 4.4)
        plain, reg = rows[~rows["regularized"]], rows[rows["regularized"]]
        panels = ((axes[0], "test_err", "test_err_sd", "test_err_published", "test error"),
                  (axes[1], "train_loss", None, "train_loss_published", "train loss (cross-entropy)"))
        for ax, y, sd, y_pub, ylabel in panels:
            _ours(ax, plain, "p_over_n", y, sd, "tab:red", "no regularizer, ours")
            pub = plain.sort_values("p_over_n_published")
            _published_points(ax, pub["p_over_n_published"], pub[y_pub], "tab:red",
                              "no regularizer, published (slides)")
            if len(reg):
                ax.errorbar(reg["p_over_n"], reg[y], yerr=None if sd is None else reg[sd], color="tab:green",
                            marker="D", ls="none", ms=6, capsize=3, label="with regularization, ours (weight decay)")
                ax.plot(reg["p_over_n_published"], reg[y_pub], color="tab:green", marker="D", ls="none", ms=7,
                        mfc="none", label="with regularization, published")
            _names(ax, plain, "p_over_n", y)
            _names(ax, pub, "p_over_n_published", y_pub)
            ax.set_xscale("log")
            ax.set_xlabel("p / n (parameters / training-set size; log scale)")
            ax.set_ylabel(ylabel)
            ax.legend(fontsize=6)
        plots.save(fig, caption, png, pdf)
    return draw


def _setup(rows: pd.DataFrame, final: pd.DataFrame) -> str:
    arch = "; ".join(f"{a}{f' (ours: {o})' if o else ''}: {m} width {int(w)} of {int(pw)}, W = {int(p):,}, recipe {r}"
                     for a, o, m, w, pw, p, r in zip(rows["architecture"], rows["ours"], rows["model"], rows["width"],
                                                     rows["paper_width"], rows["n_params"], rows["recipe"]))
    return (f"N = {int(final['N'].iloc[0]):,}; {final['seed'].nunique()} seed(s); {arch}; Zhang et al.'s input "
            f"stage (center 28x28 crop, per-image whitening) inside each model; batch norm on batch statistics "
            f"in training and evaluation")


def build_t3(inp: Inputs) -> Outcome:
    final = C.final_rows(inp.runs)  # with each run's recipe, a column of its metrics
    rows = t3_table(final, inp.tol)
    return Outcome(rows, t3_claims(rows, inp.tol), _draw_t3(rows), _setup(rows, final))


def build_slides(inp: Inputs) -> Outcome:
    final = C.final_rows(inp.runs)  # with each run's recipe, a column of its metrics
    rows = slides_table(final, inp.tol)
    return Outcome(rows, slides_claims(rows, inp.tol), _draw_slides(rows), _setup(rows, final))
