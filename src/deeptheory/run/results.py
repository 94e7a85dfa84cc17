"""What a run hands back: its rows in the one metrics schema every run writes, so that
targets read a run's settings from its rows and never parse its id."""

from __future__ import annotations

from dataclasses import dataclass

from .. import models
from ..spec import RunSpec


@dataclass
class RunResult:
    spec: RunSpec
    rows: list[dict]            # one per evaluated epoch; the last has final=True
    state_dict: dict
    wall_s: float
    resumed_from_epoch: int = 0
    continued_from: dict | None = None  # {"run_id", "epoch"} of the twin this run went on from (fork)
    final_state: dict | None = None     # what checkpoints.state gives at the stop: a continuation's start


def with_run_fields(rows: list[dict], spec: RunSpec, n_params: int, n_test: int, num_classes: int) -> list[dict]:
    """The columns every metrics row carries: one schema for every run."""
    common = {"run_id": spec.run_id, "dataset": spec.dataset, "model": spec.model, "width": spec.width,
              "n_params": n_params, "n_neurons": models.n_neurons(spec.model, spec.width), "N": spec.N,
              "labels": spec.labels, "label_seed": spec.label_seed if spec.labels == "random" else None,
              "seed": spec.seed, "init_scale": spec.init_scale, "max_epochs": spec.max_epochs,
              "stop": spec.stop, "noise": spec.noise, "subset_seed": spec.subset_seed,  # so targets never parse the id
              # the training settings (a recipe's, or the profile's): a table can say how each run trained
              "recipe": spec.recipe, "lr": spec.lr, "momentum": spec.momentum, "batch_size": spec.batch_size,
              "lr_decay": spec.lr_decay,
              "lr_milestones": " ".join(f"{m:g}" for m in spec.lr_milestones),
              "lr_milestone_factor": spec.lr_milestone_factor, "plateau_window": spec.plateau_window,
              "plateau_fall": spec.plateau_fall, "weight_decay": spec.weight_decay, "grad_clip": spec.grad_clip,
              "n_test": n_test, "num_classes": num_classes}
    return [{**common, **r} for r in rows]
