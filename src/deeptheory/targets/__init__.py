"""Every target of the catalog (docs/CATALOG.md) the pipeline builds: one registry, one
contract.

A target describes itself once, in its family module (``deeptheory.targets.<family>``): a
module-level ``TARGETS = [Target(...), ...]`` near the top names its id, source, one-line
description, the claims its report caption states, the functions of the module that build
and analyse it, and for data-set targets its grid axis and unit of analysis. This package
collects them into ``REGISTRY``; the report's captions, README.md's list of targets and
the catalog's Summary (``deeptheory docs``) are made from it.

A target's build function takes :class:`Inputs` (its config entry, the claim thresholds, a
seed and, for data-set targets, the metrics rows of the runs it reads) and returns an
:class:`Outcome`: a table, claim rows and a function that draws the figure.
``deeptheory.report`` writes figure, table, claims and provenance for every target alike.

Building the DAG (``deeptheory.grid``) reads the registry but must import neither pandas,
torch nor matplotlib, which the family modules do: so ``TARGETS`` is written in plain
literals and ``Target(...)`` calls, and read here from each module's source; the module
itself is imported only when a target is built.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable


@dataclass(frozen=True, kw_only=True)
class Target:
    id: str
    source: str             # where in the memos (slides: the slide's title)
    what: str               # one line: figure captions, the catalog's Summary
    claims: str             # what its claims say, in a line or two: the report's caption
    builder: str            # the family module's function that builds it (Inputs -> Outcome)
    # Data-set targets that analyse trained nets (rule analyze): the module's function that
    # analyses one unit, and the unit: "run" (each run alone), "seeds" (the runs that differ
    # only in seed, e.g. three minimizers of one training set) or "all" (every run in one job:
    # cheap measures); None: the target reads metrics only (deeptheory.grid.analysis_units).
    analyzer: str | None = None
    unit: str | None = None
    sweep: str | None = None  # data-set targets: the grid axis they vary ("N", "width", or "grid": any of
                              # widths x N x labels x ...); None: synthetic
    caption: str = ""       # the report's longer account of the figure, where ``what`` is too short
    family: str = ""        # module of deeptheory.targets that declares it (set by the registry)

    def __post_init__(self):
        if (self.analyzer is None) != (self.unit is None):
            raise ValueError(f"{self.id}: an analyzer and its unit come together")
        if self.unit and not self.sweep:
            raise ValueError(f"{self.id}: only a data-set target (sweep) analyses trained nets")

    @property
    def trains(self) -> bool:
        return self.sweep is not None

    def module(self):
        """Its family's module (imported on first use: a job imports only its own family)."""
        return importlib.import_module(f"{__name__}.{self.family}")

    def build(self, inputs: "Inputs") -> "Outcome":
        return getattr(self.module(), self.builder)(inputs)

    def analyze(self, runs: list, cfg: dict, seed: int) -> "Analysis":
        """The analysis of one unit of trained runs (deeptheory.analyses.TrainedRun)."""
        return getattr(self.module(), self.analyzer)(runs, cfg, seed)


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


def job_arrays(tid: str, unit: str, arrays: dict) -> dict:
    """A unit's arrays as an analysis job keeps them beside other units' (one .npz per job):
    array ``name`` of unit ``u`` under ``"u/name"`` (a unit id is a run id, which has one '/')."""
    for name in arrays:
        if "/" in name:
            raise ValueError(f"{tid}: array name {name!r} has a '/', which separates unit and name")
    return {f"{unit}/{name}": values for name, values in arrays.items()}


def unit_arrays(arrays: dict) -> dict:
    """{unit id: {name: array}}: what Inputs.arrays holds, from one analysis job's arrays (job_arrays)."""
    out: dict = {}
    for key, values in arrays.items():
        unit, name = key.rsplit("/", 1)
        out.setdefault(unit, {})[name] = values
    return out


@dataclass
class Outcome:
    table: Any                              # a DataFrame, one row per grid point or measurement
    claims: list[dict]                      # rows of claims.claim(...)
    draw: Callable[[str, Any, Any], None]   # draw(caption, png, pdf)
    setup: str = ""                         # one caption line: model, W or N, seeds, steps
    extra: dict = field(default_factory=dict)  # anything provenance should keep


# The report's caption of a target (workflow/report/target.rst puts its setup and verdicts
# under it): reStructuredText, so a literal | in a text is written \| (r"\|" in Python).
CAPTION = """**{t.id}** ({t.source}): {text}.

{kind}; its setup and grid are in docs/CATALOG.md and config key
``profiles.<profile>.{section}.{t.id}``.

Claim: {t.claims}.
"""

def kind(t: Target) -> str:
    # The words the captions had before they were generated: a build made then keeps its
    # targets' params, so Snakemake does not rerun them for a caption's sake.
    if not t.trains:
        return "A synthetic target (no data set)"
    if t.unit:
        return "A data-set target that analyses its trained nets (rule ``analyze``, one job per unit of runs)"
    return "A data-set target (trains networks on its grid)"


def caption(t: Target) -> str:
    return CAPTION.format(t=t, text=t.caption or t.what, kind=kind(t),
                          section="targets" if t.trains else "synthetic")


def declared(family: str) -> list[Target]:
    """The ``TARGETS`` of family module ``family``, read from its source without importing
    it: the statement from ``TARGETS = [`` to the ``]`` that closes it alone on a line,
    evaluated with nothing but ``Target`` in scope (parsing only it keeps a dry run quick)."""
    path = Path(__file__).with_name(f"{family}.py")
    text = path.read_text()
    start = text.find("\nTARGETS = [\n")
    if start < 0:
        return []
    end = text.find("\n]\n", start)
    if end < 0:
        raise ValueError(f"{path}: TARGETS = [ must close with a ] alone on a line")
    statement = ast.parse(text[start:end + 2], str(path)).body[0]
    entries = eval(compile(ast.Expression(statement.value), str(path), "eval"), {"Target": Target})
    return [replace(t, family=family) for t in entries]


def collect() -> dict[str, Target]:
    """Every family module's targets, data-set targets first (README and catalog list them so)."""
    found = [t for m in pkgutil.iter_modules(__path__) for t in declared(m.name)]
    twice = sorted({t.id for t in found if [u.id for u in found].count(t.id) > 1})
    if twice:
        raise ValueError(f"targets declared twice: {', '.join(twice)}")
    return {t.id: t for t in sorted(found, key=lambda t: not t.trains)}


REGISTRY: dict[str, Target] = collect()


def get(tid: str) -> Target:
    if tid not in REGISTRY:
        raise KeyError(f"unknown target {tid!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[tid]
