"""The checkpoint format, shared by the single-run and the packed path: its save and load,
and fork, the start a run takes from the final state of a twin whose epochs it trains first
(spec.shares_prefix)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from ..atomic import save_torch
from ..spec import RunSpec, shares_prefix

log = logging.getLogger(__name__)


def state(book, params: dict, momentum: dict, order: torch.Generator, noise: torch.Generator) -> dict:
    """Everything a run goes on from (its RunBook ``book`` restores from it): one checkpoint
    format for the single-run and the packed path, and the final state a continuation
    starts from (fork)."""
    return {"spec": book.spec.to_dict(), "epoch": book.epoch,
            "model": {k: v.detach().cpu().clone() for k, v in params.items()},
            "momentum": {k: v.detach().cpu().clone() for k, v in momentum.items()},
            "order": order.get_state(), "noise": noise.get_state(), "rows": [dict(r) for r in book.rows],
            "loss_curve": list(book.loss_curve), "wall_s": book.wall, "last_end": book.last_end,
            "continued_from": book.continued_from}


# How often a training run is saved, on either path: at most once per this many seconds of its
# training, and (packed path) when it stops. On CUDA a small run ends an epoch every few ms; on
# the CPU a save costs a few ms and grows with the run's rows, and saving every epoch cost the
# quick build ~40 core-seconds over its ~14,500 run-epochs. A killed job loses at most this
# much training per run. Env DEEPTHEORY_CHECKPOINT_S overrides it (0: after every epoch).
INTERVAL_S = {"cuda": 60.0, "cpu": 10.0}


def interval_s(device, seconds: float | None = None) -> float:
    """Seconds between a run's checkpoints: ``seconds`` if given, else the environment's
    DEEPTHEORY_CHECKPOINT_S, else INTERVAL_S of the device's type."""
    if seconds is None:
        seconds = os.environ.get("DEEPTHEORY_CHECKPOINT_S") or None
    return float(seconds) if seconds is not None else INTERVAL_S["cuda" if torch.device(device).type == "cuda" else "cpu"]


def save(path: Path | None, book, params: dict, momentum: dict, order: torch.Generator,
         noise: torch.Generator) -> None:
    """The checkpoint, at one path per run id (``paths.checkpoint``), so a run resumes
    under either path."""
    if path is None:
        return
    save_torch(path, state(book, params, momentum, order, noise))


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
