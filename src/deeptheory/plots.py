"""Figures: error against a grid axis, train and test, mean over seeds with their spread.

Every figure carries a caption naming its target id, its source in the memos and the data
set it was computed on, so a figure that leaves the results folder still says what it is.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .atomic import atomic_path  # noqa: E402


def error_sweep(final: pd.DataFrame, x: str, xlabel: str, caption: str, out_png, out_pdf, *,
                marker: float | None = None, marker_label: str = "", chance: float | None = None,
                scales=("log",)) -> None:
    """One panel per x scale (memo073 Figs 3 and 4 are the same data on log and linear W)."""
    fig, axes = panels(len(scales), 4.6, 3.6)
    for ax, scale in zip(axes, scales):
        sweep_panel(ax, final, x, xlabel, scale=scale, marker=marker, marker_label=marker_label, chance=chance)
    save(fig, caption, out_png, out_pdf)


def sweep_panel(ax, final: pd.DataFrame, x: str, xlabel: str, *, scale: str = "log", marker: float | None = None,
                marker_label: str = "", chance: float | None = None, title: str | None = None) -> None:
    """Train and test error against ``x`` (mean over seeds, sd band) on one axis."""
    long = final.melt(id_vars=[x], value_vars=["train_err", "test_err"], var_name="error", value_name="value")
    long["error"] = long["error"].map({"train_err": "train", "test_err": "test"})
    sns.lineplot(data=long, x=x, y="value", hue="error", style="error", markers=True, dashes=False,
                 errorbar="sd", ax=ax, palette={"train": "tab:blue", "test": "tab:red"})
    ax.set_xscale(scale)
    if scale == "log":
        log_ticks(ax, sorted(final[x].unique()))
    ax.set_xlabel(xlabel + (" (log scale)" if scale == "log" else ""))
    ax.set_ylabel("classification error")
    ax.set_ylim(-0.02, 1.0)
    if marker is not None:
        ax.axvline(marker, color="grey", ls="--", lw=1, label=marker_label)
    if chance is not None:
        ax.axhline(chance, color="black", ls=":", lw=1, label="chance")
    if title:
        ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7)


def log_ticks(ax, values) -> None:
    """Label a log x axis at the grid's own values, not at crowded minor decades."""
    ax.set_xticks(values)
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)


def save(fig, caption: str, out_png, out_pdf) -> None:
    """Caption the figure and write it as PNG and PDF, atomically."""
    fig.text(0.01, 0.01, caption, fontsize=7, ha="left", va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    for out in (out_png, out_pdf):
        with atomic_path(out) as tmp:
            fig.savefig(tmp, dpi=150, format=str(out).rsplit(".", 1)[-1])
    plt.close(fig)


def panels(count: int, width: float = 4.2, height: float = 3.4):
    sns.set_theme(style="whitegrid", context="paper")
    fig, axes = plt.subplots(1, count, figsize=(width * count, height), squeeze=False)
    return fig, axes[0]
