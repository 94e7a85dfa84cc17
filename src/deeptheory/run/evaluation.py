"""Loss and error of a net on one split, in chunks (the packed path and the GPU budget
size their batches by the same chunk)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

EVAL_CHUNK = 1000


@torch.no_grad()
def evaluate(model, x, y) -> tuple[float, float]:
    """Mean cross-entropy and error rate of ``model`` on (x, y)."""
    loss_sum, wrong = 0.0, 0
    for i in range(0, len(y), EVAL_CHUNK):
        out = model(x[i : i + EVAL_CHUNK])
        loss_sum += F.cross_entropy(out, y[i : i + EVAL_CHUNK], reduction="sum").item()
        wrong += (out.argmax(1) != y[i : i + EVAL_CHUNK]).sum().item()
    return loss_sum / len(y), wrong / len(y)
