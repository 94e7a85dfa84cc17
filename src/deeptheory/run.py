"""The per-run kit that both training paths share (``engine`` trains one run, ``packed``
many at once): a run's random streams, its data subset, its book of epochs and
evaluations, its result, its checkpoint format and its metrics schema.

Each run owns its generators (subset, labels, init, data order), which makes a run's
numbers independent of what else trains in the same process; that is what lets the packed
path train many runs of one architecture in one pass without changing them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import models
from .atomic import save_torch
from .datasets import Dataset
from .spec import RunSpec, shares_prefix

log = logging.getLogger(__name__)

EVAL_CHUNK = 1000
SUBSET, ORDER, LABELS, NOISE = 1, 2, 3, 4  # purposes of a run's random streams


def stream(seed: int, purpose: int) -> torch.Generator:
    """Independent streams per (seed, purpose) so that e.g. changing the label seed never
    shifts the data order."""
    state = np.random.SeedSequence([int(seed), purpose]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


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
    continued_from: dict | None = None  # {"run_id", "epoch"} of the twin this run went on from (fork)
    final_state: dict | None = None     # what RunBook.state gives at the stop: a continuation's start


def relative_fall(window) -> float:
    """The fall of a loss over ``window`` relative to its mean, read from a least-squares line
    (single epochs of SGD are too noisy to compare two of them). nan if not finite."""
    window = np.asarray(window, float)
    if len(window) < 2 or not np.isfinite(window).all():
        return float("nan")
    mean = float(window.mean())
    if mean <= 0:
        return 0.0
    slope = np.polyfit(np.arange(len(window)), window, 1)[0]
    return float(-slope * (len(window) - 1) / mean)


def loss_drop_last_fifth(curve: list[float]) -> float:
    """Relative fall of the per-epoch training loss over the last fifth of the epochs: how
    far from levelled off a run was when it stopped (claims call a run still falling past
    config ``claims.still_falling``). Read from a least-squares line through those epochs,
    as the fitted fall over the window relative to its mean loss: SGD at a constant step
    makes single epochs too noisy to compare (one run's two-point reading swung from +0.66
    to -3.8 between neighbouring evaluations)."""
    if len(curve) < 5:
        return float("nan")
    return relative_fall(curve[-max(2, len(curve) // 5):])


class RunBook:
    """What both training paths keep per run: epoch count, stop rule, evaluations, rows.

    A run stops once its training error is exactly 0 (then ``past_zero`` epochs more) or at
    its epoch cap. The running error of an epoch mixes weights from the whole epoch, so only
    a full pass over the training subset decides that it is fit, and that pass runs only
    when plausible (no mistake seen in the epoch), every ``eval_every`` epochs, at the end
    of the epochs past zero, and at the cap.
    """

    def __init__(self, spec: RunSpec, state: dict | None = None):
        """A fresh book, or one resumed from ``state`` (a checkpoint's, or fork()'s: then
        replay() must decide the twin's last epoch under this run's rule before training)."""
        self.spec = spec
        self.rows: list[dict] = [] if state is None else list(state["rows"])
        self.loss_curve: list[float] = [] if state is None else list(state.get("loss_curve", []))
        self.epoch = 0 if state is None else int(state["epoch"])
        self.start_epoch = self.epoch
        self.wall_before = 0.0 if state is None else float(state["wall_s"])
        self.t0 = time.perf_counter()
        self.done = bool(self.rows) and self.rows[-1]["final"] or self.epoch >= spec.epoch_cap
        # The epoch the training error was first found exactly 0 (its rows say so on resume).
        self.zero_epoch = next((r["epoch"] for r in self.rows if r["train_err"] == 0.0), None)
        self.diverged = any(r.get("diverged", False) for r in self.rows)
        self.plateaued = any(r.get("plateaued", False) for r in self.rows)
        # the running mistakes and summed loss of the last epoch: what a continuation replays
        self.last_end = None if state is None else state.get("last_end")
        self.continued_from = None if state is None else state.get("continued_from")
        self.pending = None if state is None else state.get("replay")
        if self.pending is not None:
            self.done = False

    @property
    def wall(self) -> float:
        return self.wall_before + time.perf_counter() - self.t0

    def record(self, train: tuple[float, float], test: tuple[float, float], final: bool) -> None:
        row = {"epoch": self.epoch, "train_loss": train[0], "train_err": train[1], "test_loss": test[0],
               "test_err": test[1], "interpolated": train[1] == 0.0, "final": final,
               "first_zero_epoch": self.zero_epoch, "loss_drop_last_fifth": loss_drop_last_fifth(self.loss_curve),
               "diverged": self.diverged, "plateaued": self.plateaued, "wall_s": self.wall}
        self.rows.append(row)
        log.info("%s epoch %d/%d  loss %.4f  train err %.4f  test err %.4f", self.spec.run_id, self.epoch,
                 self.spec.epoch_cap, train[0], train[1], test[1])

    def end_epoch(self, wrong: int, loss_sum: float, eval_train, eval_test) -> bool:
        """Close an epoch given its running mistakes and summed loss over the minibatches."""
        self.last_end = {"wrong": wrong, "loss_sum": loss_sum}
        self.epoch += 1
        self.loss_curve.append(loss_sum / self.spec.N)
        spec = self.spec
        cap = spec.epoch_cap
        stop_due = self.zero_epoch is not None and self.epoch >= self.zero_epoch + spec.past_zero
        maybe_fit = spec.stop_at_zero and self.zero_epoch is None and wrong == 0
        # A non-finite loss (activations that overflow: the polynomial net's x^10 outside its
        # fit interval) leaves weights that cannot recover: the run stops, marked diverged.
        self.diverged = not np.isfinite(loss_sum)
        if self.diverged:
            self.done = True
            self.record(eval_train(), eval_test(), True)
            return True
        plateau = self.plateau_reached()
        if maybe_fit or stop_due or plateau or self.epoch % spec.eval_every == 0 or self.epoch == cap:
            train = eval_train()
            if spec.stop_at_zero and self.zero_epoch is None and train[1] == 0.0:
                self.zero_epoch = self.epoch
            fit_done = self.zero_epoch is not None and self.epoch >= self.zero_epoch + spec.past_zero
            self.plateaued = plateau and self.zero_epoch is None
            self.done = self.epoch == cap or (spec.stop_at_zero and fit_done) or self.plateaued
            self.record(train, eval_test(), self.done)
        else:
            log.info("%s epoch %d/%d  running loss %.4f  running train err %.4f", spec.run_id, self.epoch, cap,
                     loss_sum / spec.N, wrong / spec.N)
        return self.done

    def plateau_reached(self) -> bool:
        """The plateau rule (spec.plateau_window, spec.plateau_fall): on top of the step
        schedule, so only for a run that has one, from its last lr milestone plus a window on
        (before it, a run at a large step may bounce and still fit), for a run still unfit
        under stop rule zero (a stated budget eK runs out)."""
        spec, w = self.spec, self.spec.plateau_window
        if not w or not spec.milestone_epochs or not spec.stop_at_zero or self.zero_epoch is not None:
            return False
        if self.epoch < max(spec.milestone_epochs) + w or len(self.loss_curve) < w:
            return False
        return relative_fall(self.loss_curve[-w:]) < spec.plateau_fall

    def replay(self, eval_train, eval_test) -> None:
        """A continuation's first act (fork): close the twin's last epoch again, with its
        running counts, under this run's own stop rule, which the twin's had stopped at. The
        twin's evaluation at that epoch stands in for a new one (the same weights); the row
        is kept only if this run's rule asks for it, and final only if this rule stops too."""
        if self.pending is None:
            return
        pending = self.pending
        row = pending["row"]
        if row is not None:
            eval_train = lambda: (row["train_loss"], row["train_err"])  # noqa: E731
            eval_test = lambda: (row["test_loss"], row["test_err"])  # noqa: E731
        n_rows = len(self.rows)
        self.end_epoch(pending["wrong"], pending["loss_sum"], eval_train, eval_test)
        if row is not None and len(self.rows) > n_rows:
            self.rows[-1]["wall_s"] = row["wall_s"]  # when that epoch ended, in the twin
        self.pending, self.start_epoch = None, self.epoch

    def finish(self, eval_train, eval_test) -> None:
        """Make sure the last row is a final one (a resume can land between the two)."""
        if not self.rows or not self.rows[-1]["final"]:
            self.record(eval_train(), eval_test(), True)

    def state(self, params: dict, momentum: dict, order: torch.Generator, noise: torch.Generator) -> dict:
        """Everything a run goes on from: one checkpoint format for the single-run and the
        packed path, and the final state a continuation starts from (fork)."""
        return {"spec": self.spec.to_dict(), "epoch": self.epoch,
                "model": {k: v.detach().cpu().clone() for k, v in params.items()},
                "momentum": {k: v.detach().cpu().clone() for k, v in momentum.items()},
                "order": order.get_state(), "noise": noise.get_state(), "rows": [dict(r) for r in self.rows],
                "loss_curve": list(self.loss_curve), "wall_s": self.wall, "last_end": self.last_end,
                "continued_from": self.continued_from}

    def save(self, path: Path | None, params: dict, momentum: dict, order: torch.Generator,
             noise: torch.Generator) -> None:
        """The checkpoint, at one path per run id (``paths.checkpoint``), so a run resumes
        under either path."""
        if path is None:
            return
        save_torch(path, self.state(params, momentum, order, noise))

    def result(self, state_dict: dict, n_test: int, num_classes: int, final_state: dict | None = None) -> RunResult:
        n_params = sum(v.numel() for v in state_dict.values())
        return RunResult(self.spec, with_run_fields(self.rows, self.spec, n_params, n_test, num_classes),
                         {k: v.detach().cpu().clone() for k, v in state_dict.items()}, self.wall,
                         resumed_from_epoch=self.start_epoch, continued_from=self.continued_from,
                         final_state=final_state)


def with_run_fields(rows: list[dict], spec: RunSpec, n_params: int, n_test: int, num_classes: int) -> list[dict]:
    """The columns every metrics row carries: one schema for every run."""
    common = {"run_id": spec.run_id, "dataset": spec.dataset, "model": spec.model, "width": spec.width,
              "n_params": n_params, "n_neurons": models.n_neurons(spec.model, spec.width), "N": spec.N,
              "labels": spec.labels, "label_seed": spec.label_seed if spec.labels == "random" else None,
              "seed": spec.seed, "init_scale": spec.init_scale, "epoch_cap": spec.epoch_cap,
              "stop": spec.stop, "noise": spec.noise, "subset_seed": spec.subset_seed,  # so targets never parse the id
              # the training settings (a recipe's, or the profile's): a table can say how each run trained
              "recipe": spec.recipe, "lr": spec.lr, "momentum": spec.momentum, "batch_size": spec.batch_size,
              "lr_decay": spec.lr_decay,
              "lr_milestones": " ".join(f"{m:g}" for m in spec.lr_milestones),
              "lr_milestone_factor": spec.lr_milestone_factor, "plateau_window": spec.plateau_window,
              "plateau_fall": spec.plateau_fall, "weight_decay": spec.weight_decay, "grad_clip": spec.grad_clip,
              "n_test": n_test, "num_classes": num_classes}
    return [{**common, **r} for r in rows]


def load_checkpoint(path, spec: RunSpec) -> dict | None:
    """The checkpoint's state if it holds this spec's run, else None. A file that does not
    load (a write cut short before the atomic rename cannot leave one, but a disk can) is
    reported and ignored: the run starts afresh rather than from a half state."""
    if path is None or not Path(path).exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 (any unreadable file means: no usable state)
        log.warning("%s: checkpoint %s does not load (%s); starting afresh", spec.run_id, path, err)
        return None
    if state.get("spec") != spec.to_dict() or "momentum" not in state or (spec.noise and "noise" not in state):
        log.info("%s: checkpoint belongs to other settings; starting afresh", spec.run_id)
        return None
    return state


def fork(twin: dict | None, spec: RunSpec) -> dict | None:
    """The state ``spec``'s run starts from, given the final state of its twin (a run whose
    epochs it trains first: spec.shares_prefix), or None (with the reason) where it must
    train from scratch. The twin's last epoch is taken back, to be closed again under this
    run's stop rule (RunBook.replay): the twin stopped there by its own rule (fit, cap,
    plateau, divergence), and this run stops there too where its rule says so, or goes on
    with the twin's weights, momentum, data-order and noise streams, rows and loss curve."""
    if twin is None:
        return None
    short = RunSpec.from_dict(twin["spec"])
    reason = ("its epochs are not a prefix of this run's (spec.shares_prefix)" if not shares_prefix(short, spec)
              else "its state holds no last-epoch counts (saved before continuations existed)"
              if twin.get("last_end") is None or int(twin["epoch"]) < 1 else None)
    if reason:
        log.info("%s: not continued from %s: %s; training from scratch", spec.run_id, short.run_id, reason)
        return None
    epoch = int(twin["epoch"])
    rows = [dict(r) for r in twin["rows"]]
    row = rows.pop() if rows and rows[-1]["epoch"] == epoch else None
    log.info("%s: continuing from %s at epoch %d", spec.run_id, short.run_id, epoch)
    return {**twin, "spec": spec.to_dict(), "epoch": epoch - 1, "rows": rows, "loss_curve": twin["loss_curve"][:-1],
            "replay": {**twin["last_end"], "row": row}, "continued_from": {"run_id": short.run_id, "epoch": epoch}}


def starting_state(spec: RunSpec, checkpoint, twin: dict | None) -> dict | None:
    """Where a run starts: its own checkpoint (a killed job), else its twin's final state
    (fork), else None (from scratch)."""
    state = load_checkpoint(checkpoint, spec)
    if state is not None:
        log.info("%s: resuming from checkpoint at epoch %d", spec.run_id, state["epoch"])
        return state
    return fork(twin, spec)  # which logs what it continues

