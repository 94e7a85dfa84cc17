"""Where a run's files live, and which runs share a pack: one helper for the rules, the
scripts and the library alike.

A run's folder and its checkpoint are named by its run id (``spec.RUN_ID``), whichever
path trains it, so a run started by the single-run engine resumes under the packed one
and the other way round.
"""

from __future__ import annotations

import json
from pathlib import Path

from .spec import BATCH_STATISTICS, RunSpec

RESULTS = "results"
RUN_FILES = ("metrics.csv", "model.pt", "provenance.json")


def run_dir(run_id: str, root: str | Path = RESULTS) -> Path:
    return Path(root) / "runs" / run_id


def checkpoint(run_id: str, root: str | Path = RESULTS) -> Path:
    return Path(root) / "checkpoints" / f"{run_id}.pt"


def is_done(folder: str | Path, spec: RunSpec) -> bool:
    """A run whose outputs exist and were made from this very spec need not train again
    (provenance is written last: a folder with it is complete)."""
    prov = Path(folder) / "provenance.json"
    if not (Path(folder) / "metrics.csv").exists() or not prov.exists():
        return False
    try:
        return json.loads(prov.read_text())["config"]["spec"] == spec.to_dict()
    except (ValueError, KeyError):
        return False


# The pattern of a pack key, and of a pack job "<pack key>/<label>" (the Snakemake wildcard).
PACK_KEY_REGEX = r"[a-z0-9-]+/[a-z0-9]+_w[0-9]+_b[0-9]+(?:_N[0-9]+)?"
PACK_JOB_REGEX = PACK_KEY_REGEX + r"/[a-z0-9+-]+"


def pack_key(spec: RunSpec) -> str:
    """Runs with equal keys have equal layer shapes and minibatch size, so they can share a
    packed pass (and, for a family with batch statistics, equal N: spec.BATCH_STATISTICS)."""
    key = f"{spec.dataset}/{spec.model}_w{spec.width}_b{spec.batch_size}"
    return f"{key}_N{spec.N}" if spec.model in BATCH_STATISTICS else key


# A pack job trains the runs of one pack key that a set of targets read, named
# "<pack key>/<label>": label "all" (every target of the profile) or the target ids joined
# by "+" (deeptheory.grid.pack_label). Its folder is results/packs/<pack job>/.
ALL = "all"


def pack_job(key: str, label: str) -> str:
    return f"{key}/{label}"


def split_pack_job(job: str) -> tuple[str, str]:
    key, label = job.rsplit("/", 1)
    return key, label


def pack_dir(key: str, root: str | Path = RESULTS) -> Path:
    return Path(root) / "packs" / key


def analysis(target: str, unit: str, suffix: str, root: str | Path = RESULTS) -> Path:
    """One analysis job's table (.csv) or arrays (.npz): per target and unit (its first run's id)."""
    return Path(root) / "analyses" / target / f"{unit}{suffix}"


def put_first_on_pythonpath(folder: str) -> None:
    """Make ``folder`` (a checkout's src) the first place every job's script imports from:
    they inherit this process's environment, and another checkout's editable install must
    not train this one's runs (provenance names the commit of the code that ran)."""
    import os

    os.environ["PYTHONPATH"] = os.pathsep.join([folder, *filter(None, [os.environ.get("PYTHONPATH")])])
