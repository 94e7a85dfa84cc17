"""The training subset and labels a run trains on, drawn from its own streams (the
analyses rebuild them from the spec alone)."""

from __future__ import annotations

import torch

from ..datasets import Dataset
from ..spec import RunSpec
from .streams import LABELS, SUBSET, stream


def subset(spec: RunSpec, data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices into the training set and the labels a run trains on. The first N of a
    seeded permutation: subsets are nested in N for one seed, and the same for natural and
    random labels."""
    n_total = len(data.y_train)
    if spec.N > n_total:
        raise ValueError(f"N = {spec.N} exceeds the {n_total} training images of {data.name}")
    idx = torch.randperm(n_total, generator=stream(spec.data_seed, SUBSET))[: spec.N].to(data.device)
    y = data.y_train
    if spec.labels == "random":
        y = torch.randint(0, data.num_classes, (n_total,), generator=stream(spec.label_seed, LABELS)).to(data.device)
    elif spec.labels != "natural":
        raise ValueError(f"labels must be 'natural' or 'random', not {spec.labels!r}")
    return idx, y[idx]


def training_subset(spec: RunSpec, data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    idx, y = subset(spec, data)
    return data.train_images(idx), y
