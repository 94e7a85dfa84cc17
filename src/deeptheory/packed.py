"""Packed training: every run that shares an architecture trains in one pass.

A per-model loop spends its time launching tiny kernels; here the parameters of R runs are
stacked along a leading axis and one ``vmap``-ed gradient call serves them all. Each run
keeps its own semantics, exactly as in :func:`engine.train_run`: its own subset, labels,
init, data order, learning rate, momentum buffer and stopping rule. Runs of different N
have epochs of different lengths; each gathers its own next minibatch every step (the last,
partial batch of an epoch is padded and masked), and a run that stops leaves the pack.

The step is built for latency (docs/PERFORMANCE.md):

- **Static shapes.** The pack's state lives in buffers of a bucket size, the power of two
  at or above the number of active runs. Slots without a run are padded: no data (mask 0),
  learning rate 0, so they never move and, each slot being its own ``vmap`` lane, never
  touch a real run's numbers. When the active runs fit a smaller bucket, the pack is
  copied into buffers of that size and the step is built again: at most log2(R) shapes.
- **No host work per step.** Minibatch gather, forward, backward and the momentum update
  are one function of device tensors. The host counts steps to know when a run's epoch
  ends (each run's epoch length is known), so nothing is read back between epoch ends.
- **One graph per step on CUDA.** The step is compiled (``torch.compile``) and captured as
  one CUDA graph that is replayed every step; its training forward and backward run under
  bf16 autocast with fp32 weights, momentum and updates. Each is a switch
  (:class:`PackOptions`), on for CUDA, off on the CPU, and each falls back (with a warning)
  to the plainer way if it fails to build.
- **Batched evaluation.** The runs whose epoch ends together and are due for a full
  evaluation are evaluated in one ``vmap``-ed fp32 pass over their training subsets and
  the test set, with one read-back for all of them.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

from . import models, paths
from .datasets import Dataset
from .engine import train_run
from .run import checkpoints
from .run.book import RunBook
from .run.evaluation import EVAL_CHUNK
from .run.results import RunResult
from .run.streams import NOISE, ORDER, initial_model, sgdl_noise, stream
from .run.subsets import subset
from .spec import RunSpec, twins

log = logging.getLogger(__name__)

# Images times runs in one chunk of a batched evaluation (bounds its activation memory:
# 2^16 x width 64 x 16 x 16 fp32 values is 4 GiB at the widest layer).
EVAL_VALUES = 2**16


def bucket(n: int) -> int:
    """The static pack size for ``n`` active runs: the power of two at or above it."""
    return 1 << max(0, int(n) - 1).bit_length()


def _env_switch(name: str) -> bool | None:
    value = os.environ.get(name)
    return None if value in (None, "") else value.lower() not in ("0", "false", "no", "off")


@dataclass(frozen=True)
class PackOptions:
    """How the packed step runs. ``None`` means: on for CUDA, off elsewhere.

    compile: ``torch.compile`` the step (fuses the update and the masking around the
        convolutions; on the CPU it costs ~30 s of warm-up per bucket size, so it is off).
    graph: capture the step as one CUDA graph and replay it (CUDA only).
    amp: bf16 autocast for the training forward and backward (CUDA only; weights,
        momentum, updates and every evaluation stay fp32).
    checkpoint_s: at most one checkpoint per run in this many seconds, and always one when
        it stops (default: run.checkpoints.interval_s, 60 on CUDA, 10 on the CPU; 0 = every
        epoch). A killed pack resumes from each run's last checkpoint, at most this much
        training ago.
    min_bucket: the smallest static pack size (default 1). Each bucket size a pack steps
        at is one more compile and capture; on a GPU a step of 8 or 16 small runs may cost
        no more than a step of 1, and a larger floor saves those warm-ups.

    Environment variables DEEPTHEORY_PACK_COMPILE / _GRAPH / _AMP (0 or 1),
    DEEPTHEORY_CHECKPOINT_S and DEEPTHEORY_PACK_MIN_BUCKET override the defaults,
    e.g. to step eagerly on a machine where compiling is slow.
    """

    compile: bool | None = None
    graph: bool | None = None
    amp: bool | None = None
    min_bucket: int | None = None
    checkpoint_s: float | None = None

    def resolve(self, device: torch.device) -> PackOptions:
        cuda = torch.device(device).type == "cuda"
        pick = {}
        for name in ("compile", "graph", "amp"):
            value = getattr(self, name)
            if value is None:
                value = _env_switch(f"DEEPTHEORY_PACK_{name.upper()}")
            pick[name] = cuda if value is None else bool(value)
        pick["graph"] = pick["graph"] and cuda
        floor = self.min_bucket if self.min_bucket is not None else os.environ.get("DEEPTHEORY_PACK_MIN_BUCKET") or 1
        pick["min_bucket"] = bucket(int(floor))
        pick["checkpoint_s"] = checkpoints.interval_s(device, self.checkpoint_s)
        return PackOptions(**pick)

    def size(self, n: int) -> int:
        """The static pack size for ``n`` active runs."""
        return max(self.min_bucket or 1, bucket(n))


class _Member:
    """One run inside a pack."""

    def __init__(self, spec: RunSpec, data: Dataset, checkpoint: Path | None, twin: dict | None = None):
        self.spec, self.checkpoint = spec, checkpoint
        self.idx, self.labels = subset(spec, data)
        self.order = stream(spec.seed, ORDER)
        self.noise = stream(spec.seed, NOISE)
        self.params = {k: v.detach() for k, v in initial_model(spec, data).named_parameters()}
        self.momentum = {k: torch.zeros_like(v) for k, v in self.params.items()}
        state = checkpoints.starting_state(spec, checkpoint, twin)
        if state is not None:
            self.params = {k: v.to(data.device, copy=True) for k, v in state["model"].items()}
            self.momentum = {k: v.to(data.device, copy=True) for k, v in state["momentum"].items()}
            self.order.set_state(state["order"])
            if "noise" in state:  # plain SGD draws none: a checkpoint from before SGDL has no state for it
                self.noise.set_state(state["noise"])
        self.book = RunBook(spec, state)
        self.steps_per_epoch = -(-spec.N // spec.batch_size)
        self.saved_at = time.monotonic()

    def final_state(self) -> dict:
        return checkpoints.state(self.book, self.params, self.momentum, self.order, self.noise)

    def next_epoch_order(self) -> tuple[torch.Tensor, torch.Tensor]:
        perm = torch.randperm(self.spec.N, generator=self.order).to(self.idx.device)
        return self.idx[perm], self.labels[perm]

    def next_epoch_noise(self, n_params: int) -> torch.Tensor:
        """The SGDL noise of every update of the coming epoch (zeros for plain SGD)."""
        if not self.spec.noise:
            return torch.zeros(self.steps_per_epoch, n_params)
        return sgdl_noise(self.spec, self.noise, n_params, self.steps_per_epoch)


def _checkpoint(spec: RunSpec, results_root: Path | None) -> Path | None:
    return None if results_root is None else paths.checkpoint(spec.run_id, results_root)


def evaluation_due(book: RunBook, wrong: int) -> bool:
    """Whether ``book.end_epoch(wrong, ...)`` will ask for a full evaluation (the rule of
    :meth:`RunBook.end_epoch`). Only a prediction: a run asked for one it did not predict
    is evaluated on its own, so a change of that rule costs speed, never numbers."""
    spec, epoch = book.spec, book.epoch + 1
    return (spec.stop_at_zero and wrong == 0) or epoch % spec.eval_every == 0 or epoch == spec.max_epochs


# ---------------------------------------------------------------------------------------
# Batched evaluation


@torch.no_grad()
def evaluate_many(template: torch.nn.Module, params: dict, x: torch.Tensor, y: torch.Tensor,
                  idx: torch.Tensor | None = None, sizes: list[int] | None = None) -> list[tuple[float, float]]:
    """Mean cross-entropy and error rate of R stacked models (``params``: leading axis R)
    in one ``vmap``-ed fp32 pass, read back once.

    Without ``idx`` every model sees all of (x, y). With ``idx`` (R, n) and ``sizes``, model
    r sees ``x[idx[r, :sizes[r]]]`` with labels ``y[r, :sizes[r]]`` (its own training
    subset; the padding past its size is masked out).
    """
    R = next(iter(params.values())).shape[0]
    n = x.shape[0] if idx is None else idx.shape[1]
    device = x.device
    # A model with batch statistics sees the chunks the single-run path's evaluation sees
    # (spec.BATCH_STATISTICS); the others fit their chunk to the memory bound.
    batch_stats = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in template.modules())
    chunk = EVAL_CHUNK if batch_stats else max(1, min(EVAL_CHUNK, EVAL_VALUES // R))
    loss_sum = torch.zeros(R, dtype=torch.float64, device=device)
    wrong = torch.zeros(R, dtype=torch.float64, device=device)
    if idx is None:
        forward = vmap(lambda p, xb: functional_call(template, p, (xb,)), in_dims=(0, None))
        count = torch.full((R,), float(n), dtype=torch.float64, device=device)
    else:
        forward = vmap(lambda p, xb: functional_call(template, p, (xb,)))
        sizes_t = torch.tensor(sizes, device=device)
        count = sizes_t.double()
    for i in range(0, n, chunk):
        if idx is None:
            out = forward(params, x[i : i + chunk])                       # (R, c, K)
            yb = y[i : i + chunk].expand(R, -1)
            mask = None
        else:
            local = idx[:, i : i + chunk]
            out = forward(params, x[local])
            yb = y[:, i : i + chunk]
            mask = (torch.arange(i, i + local.shape[1], device=device)[None, :] < sizes_t[:, None]).double()
        ce = F.cross_entropy(out.flatten(0, 1).float(), yb.flatten(), reduction="none").view_as(yb).double()
        miss = (out.argmax(-1) != yb).double()
        if mask is not None:
            ce, miss = ce * mask, miss * mask
        loss_sum += ce.sum(1)
        wrong += miss.sum(1)
    result = torch.stack([loss_sum / count, wrong / count], 1).tolist()   # the one read-back
    return [(a, b) for a, b in result]


class _Evaluations:
    """Training-subset and test evaluations of the pack's members, batched by call."""

    def __init__(self, template, data: Dataset, n_test: int):
        self.template, self.data = template, data
        self.x_test, self.y_test = data.x_test[:n_test], data.y_test[:n_test]

    def __call__(self, members: list[_Member], params: dict) -> list[tuple[tuple, tuple]]:
        """(train, test) of each member, given its parameters stacked in ``params``."""
        if not members:
            return []
        device = self.data.device
        n = max(m.spec.N for m in members)
        idx = torch.zeros(len(members), n, dtype=torch.long, device=device)
        labels = torch.zeros_like(idx)
        for r, m in enumerate(members):
            idx[r, : m.spec.N], labels[r, : m.spec.N] = m.idx, m.labels
        train = evaluate_many(self.template, params, self.data.x_train, labels, idx, [m.spec.N for m in members])
        test = evaluate_many(self.template, params, self.x_test, self.y_test)
        return list(zip(train, test))

    def closures(self, member: _Member, params: dict, known: tuple | None):
        """What a RunBook takes: callables for (loss, err) on the training subset and on the
        test set, precomputed where ``known``, else computed on the spot for this run (whose
        own, unstacked ``params`` are given)."""
        cache = {"both": known}

        def both():
            if cache["both"] is None:
                log.debug("%s: evaluation not batched", member.spec.run_id)
                cache["both"] = self([member], {k: v[None] for k, v in params.items()})[0]
            return cache["both"]

        return (lambda: both()[0]), (lambda: both()[1])


# ---------------------------------------------------------------------------------------
# The step


def _loss_fn(template: torch.nn.Module, amp: bool, device_type: str):
    def loss_and_stats(params, x, y, mask):
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=amp, cache_enabled=False):
            out = functional_call(template, params, (x,))
        # bf16 autocast's scores back to fp32; otherwise the model's own dtype (float64 in the
        # test that compares this path with the single-run one exactly).
        out = out.float() if amp else out
        ce = F.cross_entropy(out, y, reduction="none") * mask
        # A padded slot has no data: clamp keeps its loss (and gradient) 0, not 0/0.
        loss = ce.sum() / mask.sum().clamp(min=1.0)
        return loss, torch.stack([((out.argmax(1) != y).float() * mask).sum(), ce.sum().detach()])

    return loss_and_stats


def make_step(template: torch.nn.Module, names: list[str], batch_size: int, amp: bool, device_type: str,
              shapes: dict | None = None):
    """The pure packed step: state tensors in, next state out (no in-place writes, so that
    ``torch.compile`` sees one functional graph). With ``shapes`` (name -> parameter shape)
    the step adds each run's SGDL noise of this update, row pos / batch_size of its epoch's
    block ``noise`` (runs, steps, weights), after the update."""
    grads_of = vmap(grad(_loss_fn(template, amp, device_type), has_aux=True))
    sizes_of = [math.prod(shapes[k]) for k in names] if shapes else None

    def step(params: dict, momentum: dict, order, labels, sizes, lr, beta, wd, clip, pos, running, x_train,
             noise=None):
        offsets = torch.arange(batch_size, device=pos.device)
        local = pos[:, None] + offsets[None, :]
        mask = local < sizes[:, None]
        local = torch.where(mask, local, 0)
        xb = x_train[order.gather(1, local)]                       # (runs, B, C, H, W)
        grads, stats = grads_of(params, xb, labels.gather(1, local), mask.float())
        # Gradient-norm clipping per run, as torch.nn.utils.clip_grad_norm_ (clip 0: none)
        norm = torch.stack([g.flatten(1).square().sum(1) for g in grads.values()]).sum(0).sqrt()
        scale = torch.where(clip > 0, (clip / (norm + 1e-6)).clamp(max=1.0), torch.ones_like(norm))
        new_m, new_p = {}, {}
        if sizes_of is not None:
            # A vacated slot's pos runs on past its block: clamp (its noise row is zero).
            row = (pos // batch_size).clamp(max=noise.shape[1] - 1)
            rows = noise.gather(1, row[:, None, None].expand(-1, 1, noise.shape[2]))[:, 0]
            parts = dict(zip(names, rows.split(sizes_of, dim=1)))
        for k in names:
            shape = (-1,) + (1,) * (params[k].dim() - 1)
            # torch SGD's order: weight decay joins the gradient before the momentum buffer
            new_m[k] = momentum[k] * beta.view(shape) + grads[k] * scale.view(shape) + wd.view(shape) * params[k]
            new_p[k] = params[k] - lr.view(shape) * new_m[k]
            if sizes_of is not None:
                new_p[k] = new_p[k] + parts[k].view(params[k].shape)
        return new_p, new_m, running + stats, pos + batch_size

    return step


class _PackState:
    """The pack's tensors at one bucket size, and the step that advances them in place."""

    FIELDS = ("order", "labels", "sizes", "lr", "beta", "wd", "clip", "pos", "running")

    def __init__(self, slots: list[_Member | None], names, n_max: int, device, step_fn, data: Dataset,
                 options: PackOptions, sgdl: bool = False):
        self.slots, self.names, self.data = slots, names, data
        P = len(slots)
        real = [m for m in slots if m is not None]
        pad = real[0]
        self.params = {k: torch.stack([(m or pad).params[k] for m in slots]) for k in names}
        self.momentum = {k: torch.stack([(m.momentum[k] if m else torch.zeros_like(pad.momentum[k])) for m in slots])
                         for k in names}
        self.order = torch.zeros(P, n_max, dtype=torch.long, device=device)
        self.labels = torch.zeros_like(self.order)
        self.sizes = torch.zeros(P, dtype=torch.long, device=device)
        self.lr = torch.zeros(P, device=device)
        self.beta = torch.zeros(P, device=device)
        self.wd = torch.zeros(P, device=device)
        self.clip = torch.zeros(P, device=device)
        self.pos = torch.zeros(P, dtype=torch.long, device=device)
        self.running = torch.zeros(P, 2, device=device)
        # SGDL runs in the pack: each slot's noise for every update of its current epoch.
        self.fields = self.FIELDS + (("noise",) if sgdl else ())
        self.n_weights = sum(pad.params[k].numel() for k in names)
        self.noise = (torch.zeros(P, -(-n_max // pad.spec.batch_size), self.n_weights, device=device)
                      if sgdl else None)
        for i, m in enumerate(slots):
            if m is not None:
                self.sizes[i], self.beta[i], self.wd[i] = m.spec.N, m.spec.momentum, m.spec.weight_decay
                self.clip[i] = m.spec.grad_clip
        self.step_fn, self.options, self.graph = step_fn, options, None
        if options.graph:
            self.graph = self._capture()

    def tensors(self) -> list[torch.Tensor]:
        return [*self.params.values(), *self.momentum.values(), *(getattr(self, f) for f in self.fields)]

    def _advance(self) -> None:
        new_p, new_m, running, pos = self.step_fn(self.params, self.momentum, self.order, self.labels, self.sizes,
                                                  self.lr, self.beta, self.wd, self.clip, self.pos, self.running,
                                                  self.data.x_train,
                                                  self.noise)
        torch._foreach_copy_([*self.params.values(), *self.momentum.values(), self.running, self.pos],
                             [*new_p.values(), *new_m.values(), running, pos])

    def _capture(self):
        """Warm up on a side stream (compiles, picks kernels), put the state back, then
        capture one step as a CUDA graph: capture records kernels without running them."""
        saved = [t.clone() for t in self.tensors()]
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    self._advance()
            torch.cuda.current_stream().wait_stream(side)
            torch._foreach_copy_(self.tensors(), saved)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self._advance()
            torch._foreach_copy_(self.tensors(), saved)
            torch.cuda.synchronize()
            return graph
        except Exception as err:  # noqa: BLE001 (any failure: train without the graph)
            log.warning("CUDA graph capture of the packed step failed (%s); stepping without it", err)
            torch._foreach_copy_(self.tensors(), saved)
            return None

    def step(self) -> None:
        if self.graph is not None:
            self.graph.replay()
        else:
            self._advance()

    def start_epoch(self, i: int, m: _Member) -> None:
        order, labels = m.next_epoch_order()
        self.order[i, : m.spec.N].copy_(order)
        self.labels[i, : m.spec.N].copy_(labels)
        self.pos[i] = 0
        self.lr[i] = m.spec.lr_at(m.book.epoch)
        self.running[i].zero_()
        if self.noise is not None:
            self.noise[i, : m.steps_per_epoch].copy_(m.next_epoch_noise(self.n_weights))

    def hand_over(self, i: int, m: _Member) -> None:
        """Slot i's run stopped; ``m``, which continues it (fork), goes on in its slot."""
        self.slots[i] = m
        for k in self.names:
            self.params[k][i].copy_(m.params[k])
            self.momentum[k][i].copy_(m.momentum[k])
        self.sizes[i], self.beta[i], self.wd[i], self.clip[i] = m.spec.N, m.spec.momentum, m.spec.weight_decay, \
            m.spec.grad_clip
        self.start_epoch(i, m)

    def vacate(self, i: int) -> None:
        """A finished run's slot becomes padding: no data, no step, no noise."""
        self.sizes[i], self.lr[i], self.wd[i] = 0, 0.0, 0.0
        if self.noise is not None:
            self.noise[i].zero_()
        self.slots[i] = None


class _CompiledStep:
    """``torch.compile``-d step that falls back to the eager one for good if compiling
    fails. Compiling happens at a call (the first for each shape), not at
    ``torch.compile``; the step is pure, so a failed call has changed no state."""

    def __init__(self, step):
        self.eager, self.compiled, self.failed = step, torch.compile(step, dynamic=False), False

    def __call__(self, *args):
        if not self.failed:
            try:
                return self.compiled(*args)
            except Exception as err:  # noqa: BLE001 (any compile failure: step eagerly)
                log.warning("torch.compile of the packed step failed (%s: %s); stepping eagerly",
                            type(err).__name__, err)
                self.failed = True
        return self.eager(*args)


def _build_step(template, names, batch_size, options: PackOptions, device, shapes: dict | None = None):
    step = make_step(template, names, batch_size, options.amp, torch.device(device).type, shapes)
    if options.compile:
        try:
            return _CompiledStep(step), options
        except Exception as err:  # noqa: BLE001
            log.warning("torch.compile of the packed step failed (%s); stepping eagerly", err)
    return step, replace(options, compile=False)


def train_packed(specs: list[RunSpec], data: Dataset, results_root: Path | None = None,
                 on_step=None, options: PackOptions | None = None, twin_states: dict | None = None) -> list[RunResult]:
    """Train ``specs`` (one pack key) together; returns results in the order of ``specs``.
    With ``results_root``, each run checkpoints at ``paths.checkpoint`` under it.
    ``on_step(params, members)`` is called after every step with the stacked parameters
    (leading axis: the bucket size) and the pack's members.

    A run whose twin (spec.twins: the same run, a shorter stop rule) is in ``specs`` waits
    for it and, when it stops, goes on from its final state in its slot (run.checkpoints.fork); one
    whose twin trained before goes on from that twin's final state in ``twin_states`` (run
    id -> state), unless its own checkpoint is further on."""
    keys = {paths.pack_key(s) for s in specs}
    if len(keys) != 1:
        raise ValueError(f"a pack needs one architecture and batch size, got {sorted(keys)}")
    device, B = data.device, specs[0].batch_size
    options = (options or PackOptions()).resolve(device)
    template = models.build(specs[0].model, specs[0].width, data.input_shape, data.num_classes).to(device)
    names = [k for k, _ in template.named_parameters()]
    evals = _Evaluations(template, data, specs[0].n_test if specs[0].n_test is not None else len(data.y_test))

    twin_states = twin_states or {}
    ids = {s.run_id for s in specs}
    # continuations whose twin is in the pack and which have no checkpoint of their own: twin id -> spec
    pairs = twins(specs)
    waiting = {pairs[s.run_id].run_id: s for s in specs if s.run_id in pairs and pairs[s.run_id].run_id in ids
               and checkpoints.load_checkpoint(_checkpoint(s, results_root), s) is None}
    later = {s.run_id for s in waiting.values()}
    members = {}

    def join(spec: RunSpec, twin: dict | None) -> _Member:
        m = members[spec.run_id] = _Member(spec, data, _checkpoint(spec, results_root), twin)
        m.book.replay(*evals.closures(m, m.params, None))  # a continuation closes its twin's last epoch
        return m

    def successor(m: _Member) -> _Member | None:
        """``m`` while it trains; once stopped, the run that continues it (that one's, if it
        stops at once), or None."""
        while m is not None and m.book.done:
            after = waiting.pop(m.spec.run_id, None)
            m = None if after is None else join(after, m.final_state())
        return m

    started = [join(s, twin_states.get(s.run_id)) for s in specs if s.run_id not in later]
    active = [m for m in map(successor, started) if m is not None]
    n_max = max(s.N for s in specs)
    sgdl = any(m.spec.noise for m in active)
    shapes = {k: tuple(p.shape) for k, p in template.named_parameters()} if sgdl else None
    step_fn, options = _build_step(template, names, B, options, device, shapes)
    log.info("pack of %d runs (%d to train) on %s: compile %s, CUDA graph %s, bf16 autocast %s, min bucket %d",
             len(specs), len(active), device, options.compile, options.graph, options.amp, options.min_bucket)

    def build(runs: list[_Member]) -> _PackState:
        return _PackState(runs + [None] * (options.size(len(runs)) - len(runs)), names, n_max, device, step_fn,
                          data, options, sgdl)

    state = build(active) if active else None
    if state is not None:
        for i, m in enumerate(state.slots):
            if m is not None:
                state.start_epoch(i, m)
    t = 0
    ends = {id(m): m.steps_per_epoch for m in active}  # the step count at which each run's epoch ends
    next_end = min(ends.values(), default=0)
    while active:
        state.step()
        t += 1
        if on_step is not None:
            on_step(state.params, list(members.values()))
        if t < next_end:  # the host's whole work on most steps: one comparison
            continue
        ended = [i for i, m in enumerate(state.slots) if m is not None and ends[id(m)] == t]
        stats = state.running[ended].tolist()                     # one read-back per epoch end
        runs = [state.slots[i] for i in ended]
        due = [r for r, m in enumerate(runs) if evaluation_due(m.book, round(stats[r][0]))]
        slot_params = {k: v[ended] for k, v in state.params.items()}
        known = dict(zip(due, evals([runs[r] for r in due], {k: v[due] for k, v in slot_params.items()})))
        for r, (i, m) in enumerate(zip(ended, runs)):
            m.params = {k: slot_params[k][r] for k in names}
            m.momentum = {k: state.momentum[k][i].clone() for k in names}
            mistakes, loss_sum = stats[r]
            m.book.end_epoch(round(mistakes), loss_sum, *evals.closures(m, m.params, known.get(r)))
            now = time.monotonic()
            if m.book.done or now - m.saved_at >= options.checkpoint_s:
                checkpoints.save(m.checkpoint, m.book, m.params, m.momentum, m.order, m.noise)
                m.saved_at = now
            if m.book.done:
                after = successor(m)
                if after is None:
                    state.vacate(i)
                else:
                    state.hand_over(i, after)
                    ends[id(after)] = t + after.steps_per_epoch
            else:
                state.start_epoch(i, m)
                ends[id(m)] = t + m.steps_per_epoch
        active = [m for m in state.slots if m is not None]
        next_end = min((ends[id(m)] for m in active), default=0)
        if active and options.size(len(active)) < len(state.slots):   # finished runs leave the pack
            for i, m in enumerate(state.slots):
                if m is not None:  # the live state of a run that changes buffers
                    m.params = {k: state.params[k][i] for k in names}
                    m.momentum = {k: state.momentum[k][i] for k in names}
            old = state
            state = build(active)
            for i, m in enumerate(state.slots):
                if m is not None:
                    j = old.slots.index(m)
                    for f in state.fields:
                        getattr(state, f)[i].copy_(getattr(old, f)[j][: getattr(state, f).shape[1]]
                                                  if f in ("order", "labels") else getattr(old, f)[j])
            del old

    members = [members[s.run_id] for s in specs]
    unfinished = [m for m in members if not m.book.rows or not m.book.rows[-1]["final"]]
    final = dict(zip(map(id, unfinished), evals(unfinished, {k: torch.stack([m.params[k] for m in unfinished])
                                                            for k in names}) if unfinished else []))
    results = []
    for m in members:
        m.book.finish(*evals.closures(m, m.params, final.get(id(m))))
        results.append(m.book.result(m.params, len(evals.y_test), data.num_classes, m.final_state()))
    return results


def train_runs(specs: list[RunSpec], data: Dataset, results_root: Path | None = None,
               pack: bool = True, options: PackOptions | None = None, twin_states: dict | None = None) -> list[RunResult]:
    """Train runs on one data set, packing those that can share a pass; results come back
    in the order of ``specs``. ``twin_states``: train_packed's."""
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(specs):
        groups.setdefault(paths.pack_key(s) if pack else str(i), []).append(i)
    results: list[RunResult | None] = [None] * len(specs)
    for members in groups.values():
        group = [specs[i] for i in members]
        if len(group) > 1:
            out = train_packed(group, data, results_root, options=options, twin_states=twin_states)
        else:
            out = [train_run(group[0], data, _checkpoint(group[0], results_root),
                             twin=(twin_states or {}).get(group[0].run_id))]
        for i, r in zip(members, out):
            results[i] = r
    return results
