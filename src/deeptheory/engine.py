"""The single-run training loop: one run, one model, minibatches as index gathers into
data resident on the device (no per-sample loader).

A run trains until its training error is exactly 0 or its epoch cap (docs/CATALOG.md,
training protocol), evaluates the full training subset and the test set every
``eval_every`` epochs and at the end, and checkpoints atomically, at most once per
``run.checkpoints.interval_s`` seconds, so a killed job resumes close to where it was.
``deeptheory.packed`` trains many runs at once with the same semantics; both use the kit in
``deeptheory.run``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from .datasets import Dataset
from .run import checkpoints
from .run.book import RunBook
from .run.evaluation import evaluate
from .run.results import RunResult
from .run.streams import NOISE, ORDER, initial_model, sgdl_noise, stream
from .run.subsets import training_subset
from .spec import RunSpec

log = logging.getLogger(__name__)


def train_run(spec: RunSpec, data: Dataset, checkpoint: Path | None = None, on_epoch_end=None,
              twin: dict | None = None, checkpoint_s: float | None = None) -> RunResult:
    """Train one run; resume from ``checkpoint`` if it holds this spec's state, else go on
    from ``twin``, the final state (RunResult.final_state) of a run whose epochs this one
    trains first (run.checkpoints.fork), else start afresh.
    ``on_epoch_end(epoch, model)`` is called after each epoch (an analysis that replays a
    deterministic run reads the net at every step this way). The checkpoint is written at
    most once per ``checkpoint_s`` seconds (run.checkpoints.interval_s; 0: every epoch)."""
    device = data.device
    x, y = training_subset(spec, data)
    x_test, y_test = data.x_test[: spec.n_test], data.y_test[: spec.n_test]
    model = initial_model(spec, data)
    order = stream(spec.seed, ORDER)
    noise = stream(spec.seed, NOISE)
    params = list(model.parameters())
    n_params = sum(p.numel() for p in params)
    momentum = [torch.zeros_like(p) for p in params]  # plain GD (momentum 0) keeps them at zero

    state = checkpoints.starting_state(spec, checkpoint, twin)
    if state is not None:
        model.load_state_dict(state["model"])
        # a copy: a twin's final state stays as it was (the update works in place)
        momentum = [state["momentum"][name].to(device, copy=True) for name, _ in model.named_parameters()]
        order.set_state(state["order"])
        if "noise" in state:  # plain SGD draws none: a checkpoint from before SGDL has no state for it
            noise.set_state(state["noise"])
    book = RunBook(spec, state)
    eval_train = lambda: evaluate(model, x, y)  # noqa: E731
    eval_test = lambda: evaluate(model, x_test, y_test)  # noqa: E731
    book.replay(eval_train, eval_test)
    every, saved_at = checkpoints.interval_s(device, checkpoint_s), time.monotonic()

    while not book.done:
        model.train()
        lr = spec.lr_at(book.epoch)  # a schedule is a function of the epoch alone, so a resume sets it too
        perm = torch.randperm(spec.N, generator=order).to(device)
        wrong = loss_sum = 0.0
        for i in range(0, spec.N, spec.batch_size):
            idx = perm[i : i + spec.batch_size]
            out = model(x[idx])
            loss = F.cross_entropy(out, y[idx])
            for p in params:
                p.grad = None
            loss.backward()
            if spec.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, spec.grad_clip)
            sgd_update(params, momentum, lr, spec.momentum, spec.weight_decay)
            if spec.noise:  # SGDL (memo073 eq. 5): isotropic Gaussian of constant power on the update
                with torch.no_grad():
                    z = sgdl_noise(spec, noise, n_params)[0].to(device)
                    for p, part in zip(params, z.split([p.numel() for p in params])):
                        p.add_(part.view_as(p))
            wrong += (out.argmax(1) != y[idx]).sum().item()
            loss_sum += loss.item() * len(idx)
        model.eval()
        book.end_epoch(int(wrong), loss_sum, eval_train, eval_test)
        if time.monotonic() - saved_at >= every and not book.done:  # done: model.pt keeps it
            checkpoints.save(checkpoint, book, dict(model.named_parameters()), named(model, momentum), order, noise)
            saved_at = time.monotonic()
        if on_epoch_end is not None:
            on_epoch_end(book.epoch, model)
    book.finish(eval_train, eval_test)
    return book.result(model.state_dict(), len(y_test), data.num_classes,
                       checkpoints.state(book, dict(model.named_parameters()), named(model, momentum), order, noise))


def named(model, momentum: list) -> dict:
    """The momentum buffers by parameter name, as a checkpoint keeps them."""
    return {n: m for (n, _), m in zip(model.named_parameters(), momentum)}


@torch.no_grad()
def sgd_update(params: list[torch.Tensor], momentum: list[torch.Tensor], lr: float, beta: float, wd: float) -> None:
    """torch.optim.SGD's step (no dampening, no Nesterov), written out with the same
    operations in the same order, so its numbers are the optimizer's: calling the optimizer
    the first time imports TorchDynamo, 1.3 s per job, more than most quick runs train.
    A zero buffer times beta plus g is g, as the optimizer's first step copies it."""
    for p, m in zip(params, momentum):
        g = p.grad if not wd else p.grad.add(p, alpha=wd)
        if beta:
            g = m.mul_(beta).add_(g)
        p.add_(g, alpha=-lr)
