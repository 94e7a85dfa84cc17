"""memo100 Fig 3: the cross-entropy of a trained net, raw and normalized.

memo100 section 3 writes a net as f = rho f~, where the normalized net f~ has every layer of
unit norm and rho is the product of the layer norms; its bound (the Fig 3 caption) reads
L(f~) <= L^(f~) + c1 R_N(F~) + c2 sqrt(ln(1/delta) / 2N), so for the normalized nets of one
class the test loss should follow the training loss up to a constant offset. The figure
normalizes by "dividing each weight by the Frobenius norm of its layer"; after the authors'
code a layer is a module, its weight and bias divided jointly by the norm of the two as one
vector. For cnn3 (ReLU, bias in the first layer only) the net is then positively
homogeneous in every layer, f~ = f / rho: normalizing changes the losses, never a
prediction.
"""

from __future__ import annotations

import math

import pandas as pd
import torch
import torch.nn.functional as F
from torch.func import functional_call

from .. import models
from ..run.evaluation import EVAL_CHUNK
from . import TrainedRun


def layers(params: dict[str, torch.Tensor]) -> dict[str, list[str]]:
    """Parameter names by layer: the tensors of one module (its weight and bias) form one vector."""
    out: dict[str, list[str]] = {}
    for name in params:
        out.setdefault(name.rsplit(".", 1)[0], []).append(name)
    return out


def layer_norms(params: dict[str, torch.Tensor]) -> dict[str, float]:
    """The Frobenius norm of each layer, its weight and bias together."""
    return {layer: math.sqrt(sum(float((params[n].double() ** 2).sum()) for n in names))
            for layer, names in layers(params).items()}


def normalized(params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every layer divided by its Frobenius norm: the parameters of f~."""
    norms = layer_norms(params)
    return {n: p / norms[n.rsplit(".", 1)[0]] for n, p in params.items()}


@torch.no_grad()
def cross_entropy(model: torch.nn.Module, params: dict, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy (nats) and error rate of ``model`` with ``params`` on (x, y). The
    logits come in the model's precision and the loss is taken from them in float64: the
    logits of a normalized net are tiny, its losses lie a hair below ln C, and in float32
    the log-sum-exp would round away most of what tells two nets apart."""
    loss, wrong = 0.0, 0
    for i in range(0, len(y), EVAL_CHUNK):
        out = functional_call(model, params, (x[i : i + EVAL_CHUNK],)).double()
        loss += float(F.cross_entropy(out, y[i : i + EVAL_CHUNK], reduction="sum"))
        wrong += int((out.argmax(1) != y[i : i + EVAL_CHUNK]).sum())
    return loss / len(y), wrong / len(y)


def measure(run: TrainedRun) -> dict:
    """One net's row: raw and normalized losses on its training subset (the labels it was
    trained on) and its test set, its errors, and its layer norms."""
    params = {k: v.detach() for k, v in run.params.items()}
    unit = normalized(params)
    norms = layer_norms(params)
    s = run.spec
    row = {"run_id": s.run_id, "labels": s.labels, "init_scale": s.init_scale, "seed": s.seed, "model": s.model,
           "width": s.width, "N": s.N, "n_params": models.n_params(run.model), "n_test": len(run.y_test),
           "num_classes": run.data.num_classes}
    for split, x, y in (("train", run.x, run.y), ("test", run.x_test, run.y_test)):
        row[f"{split}_loss"], row[f"{split}_err"] = cross_entropy(run.model, params, x, y)
        row[f"{split}_loss_norm"], _ = cross_entropy(run.model, unit, x, y)
    row.update({f"norm_layer{i}": v for i, v in enumerate(norms.values(), 1)})
    row["rho"] = math.prod(norms.values())
    return row


def table(runs: list[TrainedRun]) -> pd.DataFrame:
    return pd.DataFrame([measure(r) for r in runs])
