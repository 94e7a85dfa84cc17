"""A run's random streams: one generator per (seed, purpose), so that e.g. changing the
label seed never shifts the data order, and a run's numbers do not depend on what else
trains in the same process."""

from __future__ import annotations

import numpy as np
import torch

from .. import models
from ..datasets import Dataset
from ..spec import RunSpec

SUBSET, ORDER, LABELS, NOISE = 1, 2, 3, 4  # purposes of a run's random streams


def stream(seed: int, purpose: int) -> torch.Generator:
    """Independent streams per (seed, purpose) so that e.g. changing the label seed never
    shifts the data order."""
    state = np.random.SeedSequence([int(seed), purpose]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


def sgdl_noise(spec: RunSpec, gen: torch.Generator, n_params: int, steps: int = 1) -> torch.Tensor:
    """The SGDL noise of ``steps`` consecutive updates (memo073 eq. 5), (steps, n_params):
    standard deviation ``spec.noise`` per weight, in the order of the model's parameters.
    One draw of n_params per update, on the CPU from the run's own NOISE stream, so the
    single-run and the packed path add the same noise and a resumed run goes on with it."""
    return torch.stack([torch.randn(n_params, generator=gen) for _ in range(steps)]) * spec.noise


def initial_model(spec: RunSpec, data: Dataset) -> torch.nn.Module:
    model = models.build(spec.model, spec.width, data.input_shape, data.num_classes)
    models.init_params(model, spec.seed, spec.init_scale)
    return model.to(data.device)
