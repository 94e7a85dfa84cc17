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
    sweep: str | None = None  # data-set targets: the grid axis they vary ("N", "width", or "grid": any of
                              # widths x N x labels x ...); None: synthetic
    # Data-set targets that analyse trained nets (rule analyze): the unit of one analysis job,
    # "run" (each run alone), "seeds" (the runs that differ only in seed, e.g. three
    # minimizers of one training set) or "all" (every run in one job: cheap measures);
    # None: the target reads metrics only (deeptheory.grid.analysis_units).
    unit: str | None = None

    @property
    def trains(self) -> bool:
        return self.sweep is not None

    def module(self):
        """Its family's module (imported on first use: a job imports only its own family)."""
        return importlib.import_module(f"{__name__}.{self.family}")

    def build(self, inputs: "Inputs") -> "Outcome":
        return self.module().BUILD[self.id](inputs)

    def analyze(self, runs: list, cfg: dict, seed: int) -> "Analysis":
        """The analysis of one unit of trained runs (deeptheory.analyses.TrainedRun)."""
        return self.module().ANALYZE[self.id](runs, cfg, seed)


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
    analyses: Any = None    # targets with an analysis: every row of their units' tables (a DataFrame, column unit)
    arrays: dict = field(default_factory=dict)  # unit -> {name: array} the analysis kept (example images, ...)
    descriptions: dict = field(default_factory=dict)  # data set -> config datasets.<name>.description

    @property
    def data(self) -> str:
        """The data set as captions and claim details name it (a list: each in turn)."""
        if self.used is None:
            return "synthetic, no data set"
        asked = self.requested if isinstance(self.requested, list) else [self.requested]
        used = self.used if isinstance(self.used, list) else [self.used]

        def name(u):
            return f"{u}: {self.descriptions[u]}" if self.descriptions.get(u) else u
        return "; ".join(name(u) if u == a else f"{name(u)} (standing in for {a})" for u, a in zip(used, asked))


@dataclass
class Analysis:
    """What an analysis job returns for one unit: a table (one row per measurement) and
    arrays a figure needs whole (example images), saved beside it."""
    table: Any
    arrays: dict = field(default_factory=dict)


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
    # memo073's evidence on trained nets (issue 11): curves from metrics rows ...
    Target("t3-curves-by-n", "memo073 Figs 13, 14", "train and test error over epochs, one curve per N, a small "
           "and a larger model", "curves", sweep="grid"),
    Target("t3-gen-vs-w", "memo073 Fig 15", "generalization error (test - train) vs number of weights, one curve "
           "per N, 30 epochs", "curves", sweep="grid"),
    Target("t3-sgdl", "memo073 Fig 6, eq. 5", "SGD vs SGDL (SGD plus Gaussian noise of constant power): training "
           "and validation curves", "curves", sweep="grid"),
    # ... and analyses of the trained nets (rule analyze).
    Target("t3-grad-hist", "memo073 Fig 5", "components of minibatch gradients at a late step: histograms and "
           "normality", "landscape", sweep="grid", unit="run"),
    Target("t3-landscape", "memo073 Figs 11, 12, eq. 15", "train error over the simplex of three SGD minimizers",
           "landscape", sweep="grid", unit="seeds"),
    Target("t3-flatness", "memo073 Table 1, eq. 16", "flatness radius along random unit directions, all parameters "
           "and top layer", "landscape", sweep="grid", unit="run"),
    Target("t3-norms", "memo073 Fig 16", "fan-in l1 norms of the weights per layer, natural vs random labels",
           "robustness", sweep="grid", unit="run"),
    Target("t3-margins", "memo073 Fig 17", "functional margins and l2 norm: natural vs random labels, init x1 vs "
           "x10", "robustness", sweep="grid", unit="run"),
    Target("t3-perturb", "memo073 Figs 19, 20, eq. 47", "training error under Gaussian input noise of size gamma, "
           "natural vs random labels", "robustness", sweep="grid", unit="run"),
    Target("slides-spectral-margin", "slides (Bartlett-Foster-Telgarsky)", "margins normalized by the product of "
           "spectral norms, natural vs random labels", "robustness", sweep="grid", unit="run"),
    Target("t3-poly", "memo073 Figs 21-24", "the 5-layer all-conv net with ReLU replaced by a degree-10 "
           "polynomial: error vs N (natural and random labels) and vs W", "sweeps", sweep="grid"),
    # memo100's data figure for its generalization argument (issue 12).
    Target("m100-norm-loss", "memo100 Fig 3; memo090", "test vs train cross-entropy of nets fit from many inits, "
           "raw and with each layer divided by its Frobenius norm", "normloss", sweep="grid", unit="all"),
    # The slides' CIFAR evidence for locality (issue 12): three families against parameter count.
    Target("slides-locality", 'slides "Locality of constituent functions is key: CIFAR"; memo100 section 1.A',
           "test error vs parameters of a convolutional, a locally connected and a fully connected net of one "
           "depth", "locality", sweep="grid"),
    # memo090's normalization claims (issue 12): trained CNNs, analysed per net, and a synthetic deep net in the build.
    Target("m90-normalization", "memo090 abstract; memo100 sections 3.D-3.F", "plain GD vs weight and batch "
           "normalization, balanced vs unbalanced init: normalized margin and layer norms of a homogeneous CNN and a "
           "deep ReLU net on separable data", "normalization", sweep="grid", unit="run"),
    # Zhang et al.'s CIFAR-10 architectures with the regularizers off (issue 12), as two sources show them.
    Target("t3-archs", "memo073 Table 2, section 6.2", "parameter count, train and test accuracy of MLP 1x512, "
           "AlexNet, Inception and a Wide ResNet, all regularizers off", "archs", sweep="grid"),
    Target("slides-zhang-table", 'slides "Why big models generalize well?"', "CudaConvNet with and without "
           "regularization, MicroInception, ResNet: parameters, p/n, train loss, test error", "archs", sweep="grid"),
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
    Target("slides-degenerate", 'slides "Over-parametric Landscapes: as p > n, equilibria are all degenerate"',
           "tanh net trained to a zero square-loss minimum on n points: near-zero Hessian eigenvalues vs p - n",
           "degenerate"),
    Target("m100-deep-vs-shallow", "memo100 Fig 1, Theorems 1-2; slides", "shallow vs binary-tree nets on a "
           "hierarchically compositional function: test and training error vs parameters", "compositional"),
]}


def get(tid: str) -> Target:
    if tid not in REGISTRY:
        raise KeyError(f"unknown target {tid!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[tid]
