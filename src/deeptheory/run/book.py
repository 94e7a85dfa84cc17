"""The stop rule and its evaluation schedule: the book both training paths keep per run
(epochs, evaluations, rows), which decides when a run is fit, capped, plateaued or diverged."""

from __future__ import annotations

import logging
import time

import numpy as np

from ..spec import RunSpec
from .results import RunResult, with_run_fields
from .trend import loss_drop_last_fifth, relative_fall

log = logging.getLogger(__name__)


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
        self.done = bool(self.rows) and self.rows[-1]["final"] or self.epoch >= spec.max_epochs
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
                 self.spec.max_epochs, train[0], train[1], test[1])

    def end_epoch(self, wrong: int, loss_sum: float, eval_train, eval_test) -> bool:
        """Close an epoch given its running mistakes and summed loss over the minibatches."""
        self.last_end = {"wrong": wrong, "loss_sum": loss_sum}
        self.epoch += 1
        self.loss_curve.append(loss_sum / self.spec.N)
        spec = self.spec
        cap = spec.max_epochs
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

    def result(self, state_dict: dict, n_test: int, num_classes: int, final_state: dict | None = None) -> RunResult:
        n_params = sum(v.numel() for v in state_dict.values())
        return RunResult(self.spec, with_run_fields(self.rows, self.spec, n_params, n_test, num_classes),
                         {k: v.detach().cpu().clone() for k, v in state_dict.items()}, self.wall,
                         resumed_from_epoch=self.start_epoch, continued_from=self.continued_from,
                         final_state=final_state)


