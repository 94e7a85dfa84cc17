"""Small homogeneous ReLU nets (no biases) under gradient descent on exponential-type
losses: the two-layer net of the slides (q hidden units on 2D data) and the deep net of
memo100 section 3.E, whose layer norms stay balanced under gradient flow.

For a net homogeneous of degree L in its weights, the normalized margin is
min_i y_i f(x_i) / prod_k |W_k|_F.
"""

from __future__ import annotations

import numpy as np
import torch

from .linear import log_times


def xor_data(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """2D points labelled by the sign of x1 x2 (not linearly separable), kept away from the
    axes so that a finite margin exists."""
    X = rng.uniform(0.2, 1.0, (n, 2)) * rng.choice([-1.0, 1.0], (n, 2))
    return X, np.sign(X[:, 0] * X[:, 1])


def relu_net(widths: list[int], seed: int, scale: float) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(o, i, generator=gen, dtype=torch.float64) * scale / np.sqrt(i)).requires_grad_()
            for i, o in zip(widths[:-1], widths[1:])]


def forward(weights, x):
    for W in weights[:-1]:
        x = torch.relu(x @ W.T)
    return (x @ weights[-1].T).squeeze(-1)


def rescale(weights, balanced: bool = False, layer_scales=None) -> None:
    """In place: with ``balanced`` give every layer the mean Frobenius norm (|W_k|^2 all
    equal, the balance memo090 says gradient flow keeps); then multiply layer k by
    ``layer_scales[k]`` (an unbalanced start)."""
    with torch.no_grad():
        if balanced:
            norms = [float(W.norm()) for W in weights]
            target = float(np.mean(norms))
            for W, n in zip(weights, norms):
                W *= target / n
        for W, s in zip(weights, layer_scales or [1.0] * len(weights)):
            W *= s


def train_homogeneous(X, y, widths: list[int], loss: str, steps: int, eta: float, seed: int = 0,
                      init_scale: float = 0.5, balanced: bool = False, layer_scales=None) -> list[dict]:
    """Full-batch GD; returns records at log-spaced steps with loss, train error, squared
    layer norms and the normalized margin. ``balanced`` and ``layer_scales``: see :func:`rescale`."""
    x = torch.as_tensor(X, dtype=torch.float64)
    yt = torch.as_tensor(y, dtype=torch.float64)
    weights = relu_net(widths, seed, init_scale)
    rescale(weights, balanced, layer_scales)
    marks, records = log_times(steps, 80) | {0}, []
    for t in range(steps + 1):
        m = yt * forward(weights, x)
        value = torch.exp(-m).mean() if loss == "exp" else torch.nn.functional.softplus(-m).mean()
        if t in marks:
            with torch.no_grad():
                sq = [float((W**2).sum()) for W in weights]
                records.append({"step": t, "loss": float(value), "train_err": float((m <= 0).double().mean()),
                                "margin": float(m.min()),
                                "normalized_margin": float(m.min()) / float(np.prod(np.sqrt(sq))),
                                **{f"sq_norm_{k + 1}": s for k, s in enumerate(sq)}})
        if t == steps:
            break
        grads = torch.autograd.grad(value, weights)
        with torch.no_grad():
            for W, g in zip(weights, grads):
                W -= eta * g
    return records
