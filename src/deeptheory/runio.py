"""A finished run on disk: ``metrics.csv``, ``model.pt`` and ``provenance.json`` in its
folder (``paths.run_dir``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from . import manifest, paths, provenance
from .atomic import save_torch, write_json, write_rows
from .run.results import RunResult


def write_run(result: RunResult, folder: Path, *, profile: str, device, verified: Path, engine: str,
              keep_state: bool = False, group: str | None = None) -> None:
    """Metrics and weights first, provenance last: a folder with provenance is complete.
    With ``keep_state`` (a run another continues: grid.Plan.continued) model.pt also holds
    the run's final state (``final_state``: momentum, data-order and noise streams, book),
    which that run starts from (twin_state); other runs keep their weights alone."""
    spec = result.spec
    write_rows(folder / "metrics.csv", result.rows)
    save_torch(folder / "model.pt", {"spec": spec.to_dict(), "state_dict": result.state_dict,
                                     **({"final_state": result.final_state} if keep_state else {})})
    write_json(folder / "provenance.json", provenance.record(
        config={"profile": profile, "spec": spec.to_dict()},
        seeds={"seed": spec.seed, "label_seed": spec.label_seed if spec.labels == "random" else None},
        device=device, wall_s=result.wall_s, data=provenance.data_checksums(verified),
        extra={"run_id": spec.run_id, "engine": engine, "resumed_from_epoch": result.resumed_from_epoch,
               "continued_from": result.continued_from, "final": result.rows[-1],
               **({"group": group} if group else {})}))


def train_and_write(spec, data, *, profile: str, device, verified: Path, keep_state: bool = False,
                    twin: dict | None = None, group: str | None = None) -> RunResult:
    """One run of a training job (rules train and train_group): trained by the single-run
    engine from its checkpoint (paths.checkpoint) if it has one, written to its folder
    (write_run), its checkpoint dropped. ``group``: the group job it trained in, if any."""
    from .engine import train_run

    checkpoint = paths.checkpoint(spec.run_id)
    result = train_run(spec, data, checkpoint=checkpoint, twin=twin)
    write_run(result, paths.run_dir(spec.run_id), profile=profile, device=device, verified=verified,
              engine="single", keep_state=keep_state, group=group)
    checkpoint.unlink(missing_ok=True)  # the run is done; model.pt keeps its weights
    return result


def twin_state(model_pt: Path, log=None) -> dict | None:
    """The final state a twin's model.pt keeps (write_run), or None (then its continuation
    trains from scratch, and says why)."""
    import torch

    saved = torch.load(model_pt, map_location="cpu", weights_only=False)
    if "final_state" not in saved and log is not None:
        log.info("twin %s keeps no final state (written before a run continued it); training from scratch", model_pt)
    return saved.get("final_state")


def link_run(src: Path, dst: Path, stamp: bool = True) -> None:
    """Give a finished run's files a second name (a hard link, a copy across file systems),
    provenance last. With ``stamp`` each is dated now, for an output Snakemake dates by its
    mtime (a hard link shares it with every other name of the file); a pack reusing a run
    leaves it alone, or the targets that read the run would look stale. Each name is
    recorded in its folder's manifest with the checksum the source's manifest holds (the
    bytes are the same), computed when the source has none."""
    dst.mkdir(parents=True, exist_ok=True)
    known = manifest.read(src)
    for name in paths.RUN_FILES:
        target = dst / name
        target.unlink(missing_ok=True)
        try:
            os.link(src / name, target)
        except OSError:
            shutil.copyfile(src / name, target)
        if stamp:
            os.utime(target)
        manifest.record(target, (known.get(name) or {}).get("sha256"))
