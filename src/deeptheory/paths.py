"""Where a run's files live, and which runs share a pack: one helper for the rules, the
scripts and the library alike.

A run's folder and its checkpoint are named by its run id (``spec.RUN_ID``), whichever
path trains it, so a run started by the single-run engine resumes under the packed one
and the other way round.
"""

from __future__ import annotations

from pathlib import Path

from .spec import RunSpec

RESULTS = "results"
RUN_FILES = ("metrics.csv", "model.pt", "provenance.json")


def run_dir(run_id: str, root: str | Path = RESULTS) -> Path:
    return Path(root) / "runs" / run_id


def checkpoint(run_id: str, root: str | Path = RESULTS) -> Path:
    return Path(root) / "checkpoints" / f"{run_id}.pt"


def pack_key(spec: RunSpec) -> str:
    """Runs with equal keys have equal layer shapes and minibatch size, so they can share a
    packed pass. The key is also the pack's folder name under results/packs/."""
    return f"{spec.dataset}/{spec.model}_w{spec.width}_b{spec.batch_size}"


def pack_dir(key: str, root: str | Path = RESULTS) -> Path:
    return Path(root) / "packs" / key


def target_dir(target: str, root: str | Path = RESULTS) -> Path:
    return Path(root) / target
