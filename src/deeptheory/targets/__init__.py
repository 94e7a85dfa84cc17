"""Every target of the catalog (docs/CATALOG.md) the pipeline builds: one registry, one
contract.

A target is a registry entry. Its build function, in the family module the entry names,
takes :class:`Inputs` (its config entry, the claim thresholds, a seed and, for data-set
targets, the metrics rows of the runs it reads) and returns an :class:`Outcome`: a table,
claim rows and a function that draws the figure. ``deeptheory.report`` writes figure,
table, claims and provenance for every target alike.

This module is plain data so that building the DAG (``deeptheory.grid``) imports neither
pandas nor matplotlib; the family modules are imported only when a target is built.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class Target:
    id: str
    source: str             # where in the memos
    what: str               # one line for captions
    family: str             # module of deeptheory.targets that builds it
    sweep: str | None = None  # data-set targets: the grid axis they vary ("N" or "width"); None: synthetic

    @property
    def trains(self) -> bool:
        return self.sweep is not None

    def build(self, inputs: "Inputs") -> "Outcome":
        module = importlib.import_module(f"{__name__}.{self.family}")
        return module.BUILD[self.id](inputs)


@dataclass(frozen=True)
class Inputs:
    target: str
    cfg: dict               # config profiles.<profile>.targets.<id> or .synthetic.<id>
    tol: Any                # claims.Tolerances from config key claims
    seed: int = 0
    runs: Any = None        # data-set targets: every metrics row of the runs they read (a DataFrame)
    requested: str | None = None  # data set the memo names; None for synthetic targets
    used: str | None = None       # data set trained on (differs offline)
    device: str = "cpu"

    @property
    def data(self) -> str:
        """The data set as captions and claim details name it."""
        if self.used is None:
            return "synthetic, no data set"
        return self.used if self.used == self.requested else f"{self.used} (standing in for {self.requested})"


@dataclass
class Outcome:
    table: Any                              # a DataFrame, one row per grid point or measurement
    claims: list[dict]                      # rows of claims.claim(...)
    draw: Callable[[str, Any, Any], None]   # draw(caption, png, pdf)
    setup: str = ""                         # one caption line: model, W or N, seeds, steps
    extra: dict = field(default_factory=dict)  # anything provenance should keep


REGISTRY: dict[str, Target] = {t.id: t for t in [
    # Data-set targets: train runs, then read their metrics.
    Target("t3-err-vs-n", "memo073 Fig 1", "train and test error vs N", "sweeps", sweep="N"),
    Target("t3-err-vs-n-random", "memo073 Fig 2", "train and test error vs N, random labels", "sweeps", sweep="N"),
    Target("t3-err-vs-n-past-zero", "memo073 Fig 1; memo100 section 3 (training past the fit)",
           "train and test error vs N, trained on past zero training error", "sweeps", sweep="N"),
    Target("t3-err-vs-w", "memo073 Figs 3, 4", "train and test error vs W at fixed N", "sweeps", sweep="width"),
    Target("m100-err-vs-neurons", "memo100 Fig 4", "train and test error vs number of neurons", "sweeps",
           sweep="width"),
    # Synthetic targets: no data set, their computation runs in the target's own job.
    Target("t3-langevin-dims", "memo073 Fig 7", "GDL on two equal-depth minima, one 2x flatter per dimension; "
           "histograms of w1 for D = 1..5", "potentials"),
    Target("t3-langevin-2d", "memo073 Figs 8, 9", "GDL on a degenerate and a non-degenerate minimum; slices of "
           "w1 as D grows", "potentials"),
    Target("t3-sgd-potential", "memo073 Fig 10, memo100 Fig 2", "SGD (minibatch noise) and SGDL on the 2D "
           "potential", "potentials"),
    Target("t3-minnorm", "memo073 section 9.6", "GD and SGD on underdetermined least squares", "linear"),
    Target("m100-linear-dynamics", "memo100 section 3.F; slides (Soudry et al.)", "GD on exponential and "
           "logistic loss, separable data: norm and angle to the SVM direction", "linear"),
    Target("slides-nonseparable", "slides", "GD with logistic vs exponential loss on non-separable 2D data",
           "linear"),
    Target("m100-balance", "memo100 section 3.E", "deep homogeneous ReLU net, GD on exponential loss: layer "
           "norms", "homogeneous"),
    Target("slides-two-layer-margin", "slides", "2-layer ReLU net on 2D data: loss, layer norms, normalized "
           "margin", "homogeneous"),
    Target("m100-deep-vs-shallow", "memo100 Fig 1, Theorems 1-2; slides", "shallow vs binary-tree nets on a "
           "hierarchically compositional function: test error vs parameters", "compositional"),
]}


def get(tid: str) -> Target:
    if tid not in REGISTRY:
        raise KeyError(f"unknown target {tid!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[tid]
