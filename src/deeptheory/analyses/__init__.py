"""Analyses of trained nets: what the memos measure on a net after training (gradients at
a late step, the landscape around it, its norms and margins, its robustness).

An analysis job (rule ``analyze``) analyses one unit (``grid.analysis_units``) or, where the
profile says so, every unit of a target on one data set (``grid.analysis_jobs``), each unit
alone (``analyze_job``): it loads the unit's runs, each run's weights from ``model.pt`` and
the very training subset and labels it was trained on (``run.subsets.subset``, from its
spec), and hands them to the target's analysis function (its registry entry's
``analyzer``, in the target's family module), which returns an
:class:`~deeptheory.targets.Analysis`: a table, and arrays a figure needs whole. The
target then reads those tables, never the nets: its claims are plain functions of rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import models
from ..datasets import Dataset
from ..run.subsets import subset
from ..spec import RunSpec
from ..targets import job_arrays


@dataclass
class TrainedRun:
    spec: RunSpec
    model: torch.nn.Module   # the trained weights, in eval mode, on the data's device
    x: torch.Tensor          # the training subset it was trained on (normalised images) ...
    y: torch.Tensor          # ... and the labels it was trained on (random ones for random labels)
    x_test: torch.Tensor     # the test images it was evaluated on (first n_test)
    y_test: torch.Tensor
    data: Dataset            # the data set (pixel in [0, 1] = x * data.std + data.mean)
    metrics: pd.DataFrame    # its metrics.csv

    @property
    def params(self) -> dict[str, torch.Tensor]:
        return dict(self.model.named_parameters())


def load(folder: str | Path, data: Dataset) -> TrainedRun:
    """A finished run (``paths.run_dir``) with its data, ready to analyse."""
    folder = Path(folder)
    saved = torch.load(folder / "model.pt", map_location="cpu", weights_only=False)
    spec = RunSpec.from_dict(saved["spec"])
    model = models.build(spec.model, spec.width, data.input_shape, data.num_classes)
    model.load_state_dict(saved["state_dict"])
    model = model.to(data.device).eval()
    idx, y = subset(spec, data)
    return TrainedRun(spec, model, data.train_images(idx), y, data.x_test[: spec.n_test], data.y_test[: spec.n_test],
                      data, pd.read_csv(folder / "metrics.csv"))


def analyze_job(target, units: dict, data: Dataset, cfg: dict, seed: int, load=load) -> tuple[pd.DataFrame, dict]:
    """One analysis job: each unit of ``units`` ({unit id: its run folders}) analysed alone by
    ``target``'s analyzer, with the same ``cfg`` and ``seed`` whichever job holds it, so a
    unit's rows and arrays do not depend on how units are grouped into jobs (tested). The
    table has the unit id as its first column; the arrays are keyed by unit and name
    (``targets.job_arrays``; ``targets.unit_arrays`` splits them again)."""
    tables, arrays = [], {}
    for unit, folders in units.items():
        result = target.analyze([load(f, data) for f in folders], cfg, seed)
        table = result.table.copy()
        table.insert(0, "unit", unit)
        tables.append(table)
        arrays.update(job_arrays(target.id, unit, result.arrays))
    return pd.concat(tables, ignore_index=True), arrays
