"""Packed training: every run that shares an architecture trains in one pass.

A per-model loop spends its time launching tiny kernels; here the parameters of R runs are
stacked along a leading axis and one ``vmap``-ed gradient call serves them all. Each run
keeps its own semantics, exactly as in :func:`engine.train_run`: its own subset, labels,
init, data order, learning rate, momentum buffer and stopping rule. Runs of different N
have epochs of different lengths; each gathers its own next minibatch every step (the last,
partial batch of an epoch is padded and masked), and a run that stops leaves the pack.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

from . import models, paths
from .datasets import Dataset
from .engine import train_run
from .run import ORDER, RunBook, RunResult, evaluate, initial_model, load_checkpoint, stream, subset
from .spec import RunSpec

log = logging.getLogger(__name__)


class _Member:
    """One run inside a pack."""

    def __init__(self, spec: RunSpec, data: Dataset, checkpoint: Path | None):
        self.spec, self.checkpoint = spec, checkpoint
        self.idx, self.labels = subset(spec, data)
        self.order = stream(spec.seed, ORDER)
        self.params = {k: v.detach() for k, v in initial_model(spec, data).named_parameters()}
        self.momentum = {k: torch.zeros_like(v) for k, v in self.params.items()}
        state = load_checkpoint(checkpoint, spec)
        if state is not None:
            self.params = {k: v.to(data.device) for k, v in state["model"].items()}
            self.momentum = {k: v.to(data.device) for k, v in state["momentum"].items()}
            self.order.set_state(state["order"])
            log.info("%s: resuming from checkpoint at epoch %d", spec.run_id, state["epoch"])
        self.book = RunBook(spec, state)

    def next_epoch_order(self) -> tuple[torch.Tensor, torch.Tensor]:
        perm = torch.randperm(self.spec.N, generator=self.order).to(self.idx.device)
        return self.idx[perm], self.labels[perm]


def _checkpoint(spec: RunSpec, results_root: Path | None) -> Path | None:
    return None if results_root is None else paths.checkpoint(spec.run_id, results_root)


def train_packed(specs: list[RunSpec], data: Dataset, results_root: Path | None = None,
                 on_step=None) -> list[RunResult]:
    """Train ``specs`` (one pack key) together; returns results in the order of ``specs``.
    With ``results_root``, each run checkpoints at ``paths.checkpoint`` under it."""
    keys = {paths.pack_key(s) for s in specs}
    if len(keys) != 1:
        raise ValueError(f"a pack needs one architecture and batch size, got {sorted(keys)}")
    device, B = data.device, specs[0].batch_size
    template = models.build(specs[0].model, specs[0].width, data.input_shape, data.num_classes).to(device)
    names = [k for k, _ in template.named_parameters()]
    x_test, y_test = data.x_test[: specs[0].n_test], data.y_test[: specs[0].n_test]

    members = [_Member(s, data, _checkpoint(s, results_root)) for s in specs]

    def loss_and_stats(params, x, y, mask):
        out = functional_call(template, params, (x,))
        ce = F.cross_entropy(out, y, reduction="none") * mask
        loss = ce.sum() / mask.sum()
        return loss, torch.stack([((out.argmax(1) != y).float() * mask).sum(), ce.sum().detach()])

    step_grads = vmap(grad(loss_and_stats, has_aux=True))

    def view(m: _Member):
        return lambda x: functional_call(template, m.params, (x,))

    def evaluators(m: _Member):
        x, y = data.x_train[m.idx], m.labels
        return (lambda: evaluate(view(m), x, y)), (lambda: evaluate(view(m), x_test, y_test))

    # The pack's state, stacked over its active members.
    active = [m for m in members if not m.book.done]
    n_max = max((m.spec.N for m in active), default=1)
    params = {k: torch.stack([m.params[k] for m in active]) for k in names} if active else {}
    momentum = {k: torch.stack([m.momentum[k] for m in active]) for k in names} if active else {}
    order = torch.zeros(len(active), n_max, dtype=torch.long, device=device)
    labels = torch.zeros_like(order)
    for i, m in enumerate(active):
        order[i, : m.spec.N], labels[i, : m.spec.N] = m.next_epoch_order()
    sizes = torch.tensor([m.spec.N for m in active], device=device)
    lr = torch.tensor([m.spec.lr for m in active], device=device)
    beta = torch.tensor([m.spec.momentum for m in active], device=device)
    pos = torch.zeros(len(active), dtype=torch.long, device=device)
    pos_host = [0] * len(active)  # the same positions on the host: finding epoch ends needs no device sync
    running = torch.zeros(len(active), 2, device=device)  # per run: mistakes and summed loss this epoch
    offsets = torch.arange(B, device=device)

    while active:
        local = pos[:, None] + offsets[None, :]
        mask = local < sizes[:, None]
        local = torch.where(mask, local, 0)
        xb = data.x_train[order.gather(1, local)]                    # (runs, B, C, H, W)
        grads, batch_stats = step_grads(params, xb, labels.gather(1, local), mask.float())
        for k in names:
            shape = (-1,) + (1,) * (params[k].dim() - 1)
            momentum[k].mul_(beta.view(shape)).add_(grads[k])
            params[k].sub_(lr.view(shape) * momentum[k])
        running += batch_stats
        pos += B
        pos_host = [p + B for p in pos_host]
        if on_step is not None:
            on_step(params, members)

        ended = [i for i, m in enumerate(active) if pos_host[i] >= m.spec.N]
        if not ended:
            continue
        keep = []
        for i, m in enumerate(active):
            if i not in ended:
                keep.append(i)
                continue
            m.params = {k: params[k][i] for k in names}
            m.momentum = {k: momentum[k][i] for k in names}
            mistakes, loss_sum = running[i].tolist()
            m.book.end_epoch(int(round(mistakes)), loss_sum, *evaluators(m))
            m.book.save(m.checkpoint, m.params, m.momentum, m.order)
            if not m.book.done:
                keep.append(i)
                order[i, : m.spec.N], labels[i, : m.spec.N] = m.next_epoch_order()
                pos[i], pos_host[i] = 0, 0
                running[i] = 0.0
        if len(keep) < len(active):  # finished runs leave the pack
            sel = torch.tensor(keep, dtype=torch.long, device=device)
            params = {k: v[sel].clone() for k, v in params.items()}
            momentum = {k: v[sel].clone() for k, v in momentum.items()}
            order, labels, sizes, lr, beta, pos, running = (t[sel] for t in (order, labels, sizes, lr, beta, pos, running))
            active = [active[i] for i in keep]
            pos_host = [pos_host[i] for i in keep]

    results = []
    for m in members:
        m.book.finish(*evaluators(m))
        results.append(m.book.result(m.params, len(y_test), data.num_classes))
    return results


def train_runs(specs: list[RunSpec], data: Dataset, results_root: Path | None = None,
               pack: bool = True) -> list[RunResult]:
    """Train runs on one data set, packing those that can share a pass; results come back
    in the order of ``specs``."""
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(specs):
        groups.setdefault(paths.pack_key(s) if pack else str(i), []).append(i)
    results: list[RunResult | None] = [None] * len(specs)
    for members in groups.values():
        group = [specs[i] for i in members]
        if len(group) > 1:
            out = train_packed(group, data, results_root)
        else:
            out = [train_run(group[0], data, _checkpoint(group[0], results_root))]
        for i, r in zip(members, out):
            results[i] = r
    return results
