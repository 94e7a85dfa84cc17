"""m90-normalization: the normalized margin and the layer norms of a trained homogeneous CNN
(``deeptheory.normalization``), plain, weight- or batch-normalized.

Per net, on the training subset and labels it was trained on, as one batch (the batch of
full-batch GD, so a BN net sees the statistics it trained with): the normalized margin
min_i (f_y(x_i) - max_{j != y} f_j(x_i)) / prod_k |W_k|_F of the effective weights, and the
squared Frobenius norms of every trained tensor at init and at the end. The init is the
run's own (``run.initial_model``: seeded, so it is rebuilt exactly), which is all that the
balance claim needs: under gradient flow d/dt |W_k|^2 is the same for every layer k, so the
differences |W_k|^2 - |W_k+1|^2 at the end should equal those at init.
"""

from __future__ import annotations

import pandas as pd
import torch

from .. import models
from .. import normalization as NZ
from ..run import initial_model
from . import TrainedRun


@torch.no_grad()
def measure(run: TrainedRun) -> dict:
    s = run.spec
    row = {"run_id": s.run_id, "model": s.model, "kind": run.model.kind, "unbalance": run.model.unbalance,
           "seed": s.seed, "width": s.width, "N": s.N, "lr": s.lr, "steps": s.max_epochs,
           "n_params": models.n_params(run.model)}
    start = initial_model(s, run.data).eval()
    for when, model in (("init", start), ("final", run.model.eval())):
        nm = NZ.normalized_margin(model, run.x, run.y)
        out = model(run.x)
        row.update({f"{k}_{when}": v for k, v in nm.items()})
        row[f"train_loss_{when}"] = float(torch.nn.functional.cross_entropy(out.double(), run.y))
        row[f"train_err_{when}"] = float((out.argmax(1) != run.y).double().mean())
        row.update({f"{k}_{when}": v for k, v in NZ.squared_norms(model).items()})
    return row


def table(runs: list[TrainedRun]) -> pd.DataFrame:
    return pd.DataFrame([measure(r) for r in runs])
