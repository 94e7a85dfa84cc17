"""The training engine: one loop for every data-set target, driven by run specs.

Data sit on the device as tensors and minibatches are index gathers, so there is no
per-sample loader. Each run owns its generators (subset, labels, init, data order), which
makes a run's numbers independent of what else trains in the same process; that is what
lets many runs of one architecture be packed into one pass later without changing them.

A run trains until its training error is exactly 0 or its epoch cap (EXPERIMENTS.md C),
evaluates the full training subset and the test set every ``eval_every`` epochs and at the
end, and checkpoints atomically after every epoch so a killed job resumes where it was.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import models
from .atomic import save_torch
from .datasets import Dataset
from .spec import RunSpec

log = logging.getLogger(__name__)

EVAL_CHUNK = 1000


def _generator(seed: int, purpose: int) -> torch.Generator:
    """Independent streams per (seed, purpose) so that e.g. changing the label seed never
    shifts the data order."""
    state = np.random.SeedSequence([int(seed), purpose]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


SUBSET, ORDER, LABELS = 1, 2, 3


def training_subset(spec: RunSpec, data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """The first N of a seeded permutation: subsets are nested in N for one seed, and the
    same for natural and random labels."""
    n_total = len(data.y_train)
    if spec.N > n_total:
        raise ValueError(f"N = {spec.N} exceeds the {n_total} training images of {data.name}")
    idx = torch.randperm(n_total, generator=_generator(spec.seed, SUBSET))[: spec.N].to(data.device)
    y = data.y_train
    if spec.labels == "random":
        y = torch.randint(0, data.num_classes, (n_total,), generator=_generator(spec.label_seed, LABELS)).to(data.device)
    elif spec.labels != "natural":
        raise ValueError(f"labels must be 'natural' or 'random', not {spec.labels!r}")
    return data.x_train[idx], y[idx]


@torch.no_grad()
def evaluate(model, x, y) -> tuple[float, float]:
    """Mean cross-entropy and error rate of ``model`` on (x, y)."""
    loss_sum, wrong = 0.0, 0
    for i in range(0, len(y), EVAL_CHUNK):
        out = model(x[i : i + EVAL_CHUNK])
        loss_sum += F.cross_entropy(out, y[i : i + EVAL_CHUNK], reduction="sum").item()
        wrong += (out.argmax(1) != y[i : i + EVAL_CHUNK]).sum().item()
    return loss_sum / len(y), wrong / len(y)


@dataclass
class RunResult:
    spec: RunSpec
    rows: list[dict]            # one per evaluated epoch; the last has final=True
    state_dict: dict
    wall_s: float
    resumed_from_epoch: int = 0
    info: dict = field(default_factory=dict)


def train_run(spec: RunSpec, data: Dataset, checkpoint: Path | None = None, on_epoch_end=None) -> RunResult:
    """Train one run; resume from ``checkpoint`` if it holds this spec's state."""
    device = data.device
    x, y = training_subset(spec, data)
    x_test, y_test = data.x_test[: spec.n_test], data.y_test[: spec.n_test]

    model = models.build(spec.model, spec.width, data.input_shape, data.num_classes)
    models.init_params(model, spec.seed, spec.init_scale)
    model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum)
    order = _generator(spec.seed, ORDER)
    n_params = models.n_params(model)

    rows: list[dict] = []
    start_epoch, wall_before = 0, 0.0
    if checkpoint is not None and Path(checkpoint).exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        if state["spec"] == spec.to_dict():
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["opt"])
            order.set_state(state["order"])
            rows, start_epoch, wall_before = state["rows"], state["epoch"], state["wall_s"]
            log.info("%s: resuming from checkpoint at epoch %d", spec.run_id, start_epoch)
        else:
            log.info("%s: checkpoint belongs to other settings; starting afresh", spec.run_id)

    def record(epoch: int, train_loss: float, train_err: float, final: bool, wall: float):
        test_loss, test_err = evaluate(model, x_test, y_test)
        row = {"epoch": epoch, "train_loss": train_loss, "train_err": train_err,
               "test_loss": test_loss, "test_err": test_err,
               "interpolated": train_err == 0.0, "final": final, "wall_s": wall}
        rows.append(row)
        log.info("%s epoch %d/%d  loss %.4f  train err %.4f  test err %.4f", spec.run_id, epoch,
                 spec.epoch_cap, train_loss, train_err, test_err)
        return row

    t0 = time.perf_counter()
    cap = spec.epoch_cap
    epoch = start_epoch
    done = bool(rows) and rows[-1]["final"]
    while not done and epoch < cap:
        model.train()
        perm = torch.randperm(spec.N, generator=order).to(device)
        wrong = 0
        for i in range(0, spec.N, spec.batch_size):
            idx = perm[i : i + spec.batch_size]
            out = model(x[idx])
            loss = F.cross_entropy(out, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            wrong += (out.argmax(1) != y[idx]).sum().item()
        epoch += 1
        # The running error mixes weights from the whole epoch; only a full pass decides
        # that the training set is fit, and it runs only when that is plausible.
        full = (spec.stop_at_zero and wrong == 0) or epoch % spec.eval_every == 0 or epoch == cap
        if full:
            model.eval()
            train_loss, train_err = evaluate(model, x, y)
            done = epoch == cap or (spec.stop_at_zero and train_err == 0.0)
            record(epoch, train_loss, train_err, done, wall_before + time.perf_counter() - t0)
        if checkpoint is not None:
            save_torch(checkpoint, {"spec": spec.to_dict(), "epoch": epoch, "model": model.state_dict(),
                                    "opt": opt.state_dict(), "order": order.get_state(), "rows": rows,
                                    "wall_s": wall_before + time.perf_counter() - t0})
        if on_epoch_end is not None:
            on_epoch_end(epoch)
    if not rows or not rows[-1]["final"]:  # e.g. resumed after the last epoch but before the final row
        model.eval()
        record(epoch, *evaluate(model, x, y), True, wall_before + time.perf_counter() - t0)

    common = {"run_id": spec.run_id, "dataset": spec.dataset, "model": spec.model, "width": spec.width,
              "n_params": n_params, "n_neurons": models.n_neurons(spec.model, spec.width), "N": spec.N,
              "labels": spec.labels, "label_seed": spec.label_seed if spec.labels == "random" else None,
              "seed": spec.seed, "init_scale": spec.init_scale, "epoch_cap": cap,
              "n_test": len(y_test), "num_classes": data.num_classes}
    rows = [{**common, **r} for r in rows]
    wall = wall_before + time.perf_counter() - t0
    return RunResult(spec, rows, {k: v.detach().cpu() for k, v in model.state_dict().items()}, wall,
                     resumed_from_epoch=start_epoch)


def train_runs(specs: list[RunSpec], data: Dataset, checkpoint_dir: Path | None = None) -> list[RunResult]:
    """Train several runs on one data set. A plain loop for now; runs sharing an
    architecture are the unit a packed pass will take over."""
    results = []
    for spec in specs:
        ckpt = None if checkpoint_dir is None else Path(checkpoint_dir) / (spec.run_id.replace("/", "__") + ".pt")
        results.append(train_run(spec, data, ckpt))
    return results


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
