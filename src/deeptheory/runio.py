"""A finished run on disk: ``metrics.csv``, ``model.pt`` and ``provenance.json`` in its folder."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from . import provenance
from .atomic import save_torch, write_csv, write_json
from .engine import RunResult
from .spec import RunSpec


def run_dir(results_root: str | Path, spec: RunSpec) -> Path:
    return Path(results_root) / "runs" / spec.run_id


def write_run(result: RunResult, folder: Path, *, profile: str, device, verified: Path, engine: str) -> None:
    spec = result.spec
    write_csv(folder / "metrics.csv", pd.DataFrame(result.rows))
    save_torch(folder / "model.pt", {"spec": spec.to_dict(), "state_dict": result.state_dict})
    write_json(folder / "provenance.json", provenance.record(
        config={"profile": profile, "spec": spec.to_dict()},
        seeds={"seed": spec.seed, "label_seed": spec.label_seed if spec.labels == "random" else None},
        device=device, wall_s=result.wall_s, data=provenance.data_checksums(verified),
        extra={"run_id": spec.run_id, "engine": engine, "resumed_from_epoch": result.resumed_from_epoch,
               "final": result.rows[-1]}))


def is_done(folder: Path, spec: RunSpec) -> bool:
    """A run whose outputs exist and were made from this very spec need not train again."""
    prov = folder / "provenance.json"
    if not (folder / "metrics.csv").exists() or not prov.exists():
        return False
    return json.loads(prov.read_text())["config"]["spec"] == spec.to_dict()
