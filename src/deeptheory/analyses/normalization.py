"""m90-normalization: the normalized margin and the layer norms of a trained homogeneous CNN
(``deeptheory.models.normalization``), plain, weight- or batch-normalized.

Per net, on the training subset and labels it was trained on, as one batch (the batch of
full-batch GD, so a BN net sees the statistics it trained with): the normalized margin
min_i (f_y(x_i) - max_{j != y} f_j(x_i)) / prod_k |W_k|_F of the effective weights, the
margin under per-unit normalization (``unit_margin``), and the squared Frobenius norms of
every trained tensor at init and at the end. The init is the run's own
(``run.streams.initial_model``: seeded, so it is rebuilt exactly), which is all that the balance
claim needs: under gradient flow d/dt |W_k|^2 is the same for every layer k, so the
differences |W_k|^2 - |W_k+1|^2 at the end should equal those at init.

The margin claims compare nets at matched training loss, so they need each net at every
step, not only at its end. Full-batch GD without momentum or noise is deterministic, so
:func:`replay` trains the run again from its seed with the single-run engine and reads the
net after every step (arrays ``replay_<measure>``); it checks that the replay's training
loss is the run's own at every evaluation of its metrics.csv (``replay_gap``), whichever
path (single-run or packed) trained it.
"""

from __future__ import annotations

import pandas as pd
import torch

from .. import models
from ..models import normalization as NZ
from ..engine import train_run
from ..run.evaluation import evaluate
from ..run.streams import initial_model
from ..targets import Analysis
from . import TrainedRun

REPLAYED = ("loss", "err", "normalized_margin", "unit_margin")  # the measures replay keeps at every step


def replay(run: TrainedRun) -> tuple[dict, float]:
    """The run's GD again, from its init: arrays step (0 .. T) and each of ``REPLAYED`` on the
    training subset as one batch; and the largest relative gap between the replay's training
    loss and the run's metrics.csv at its evaluated epochs."""
    s = run.spec
    if s.batch_size < s.N or s.momentum or s.noise:
        raise ValueError(f"{s.run_id}: only full-batch GD without momentum or noise replays step by step "
                         f"(batch {s.batch_size} of N {s.N}, momentum {s.momentum}, noise {s.noise})")
    logged = dict(zip(run.metrics["epoch"].astype(int), run.metrics["train_loss"].astype(float)))
    rows, gaps = [], []

    def read(epoch: int, model) -> None:
        model.eval()
        nm = NZ.normalized_margin(model, run.x, run.y)
        rows.append({"step": epoch, **{k: nm[k] for k in REPLAYED}})
        if epoch in logged:   # the engine's own evaluation, as metrics.csv has it
            gaps.append(abs(evaluate(model, run.x, run.y)[0] - logged[epoch]) / max(abs(logged[epoch]), 1e-12))

    read(0, initial_model(s, run.data))
    train_run(s, run.data, on_epoch_end=read)
    table = pd.DataFrame(rows)
    return {f"replay_{k}": table[k].to_numpy() for k in ("step", *REPLAYED)}, max(gaps, default=float("nan"))


@torch.no_grad()
def measure(run: TrainedRun) -> dict:
    s = run.spec
    row = {"run_id": s.run_id, "model": s.model, "kind": run.model.kind, "unbalance": run.model.unbalance,
           "seed": s.seed, "width": s.width, "N": s.N, "lr": s.lr, "steps": s.max_epochs,
           "n_params": models.n_params(run.model)}
    start = initial_model(s, run.data).eval()
    for when, model in (("init", start), ("final", run.model.eval())):
        nm = NZ.normalized_margin(model, run.x, run.y)
        row.update({f"{k}_{when}": v for k, v in nm.items() if k not in ("loss", "err")})
        row[f"train_loss_{when}"] = nm["loss"]
        row[f"train_err_{when}"] = nm["err"]
        row.update({f"{k}_{when}": v for k, v in NZ.squared_norms(model).items()})
    return row


def analyze(runs: list[TrainedRun]) -> Analysis:
    """One row per run (``measure``) and its replayed trajectory (one unit per run)."""
    rows, arrays = [], {}
    for run in runs:
        traj, gap = replay(run)
        rows.append(measure(run) | {"replay_gap": gap})
        arrays.update(traj)
    return Analysis(pd.DataFrame(rows), arrays)
