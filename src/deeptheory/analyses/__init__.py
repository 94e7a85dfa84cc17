"""Analyses of trained nets: what the memos measure on a net after training (gradients at
a late step, the landscape around it, its norms and margins, its robustness).

An analysis job (rule ``analyze``) loads the runs of one unit (``grid.analysis_units``):
each run's weights from ``model.pt`` and the very training subset and labels it was
trained on (``run.subsets.subset``, from its spec), and hands them to the target's analysis
function (its registry entry's ``analyzer``, in the target's family module), which returns an
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
