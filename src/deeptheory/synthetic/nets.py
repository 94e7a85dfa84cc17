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


def unbalanced_scales(L: int, r: float) -> list[float]:
    """Layer scales for :func:`rescale` that unbalance a net of ``L`` layers without changing
    its function: layer 1 times ``r``, the last layer times 1 / ``r`` (the net is
    1-homogeneous in each layer's weights, so f is unchanged and only |W_k|^2 move)."""
    if L < 2:
        raise ValueError("an unbalanced start that keeps the function needs at least two layers")
    return [float(r)] + [1.0] * (L - 2) + [1.0 / float(r)]


def gd_step(loss: torch.Tensor, leaves: list[torch.Tensor], eta: float) -> None:
    """One step of plain gradient descent on ``loss`` over ``leaves``, in place."""
    grads = torch.autograd.grad(loss, leaves)
    with torch.no_grad():
        for p, g in zip(leaves, grads):
            p -= eta * g


def margin_record(step: int, loss, m: torch.Tensor, sq_norms: list[float]) -> dict:
    """One recorded GD step: loss, training error, margin min_i y_i f(x_i) (``m`` holds the
    y_i f(x_i)) and that margin over the product of the layers' Frobenius norms."""
    return {"step": step, "loss": float(loss), "train_err": float((m <= 0).double().mean()),
            "margin": float(m.min()), "normalized_margin": float(m.min()) / float(np.prod(np.sqrt(sq_norms)))}

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
                records.append({**margin_record(t, value, m, sq), **{f"sq_norm_{k + 1}": s for k, s in enumerate(sq)}})
        if t == steps:
            break
        gd_step(value, weights, eta)
    return records


# --- memo090: plain GD vs weight and batch normalization (m90-normalization) -------------------

NORMALIZATIONS = ("plain", "wn", "bn")
LOSSES = ("exp", "square")
BN_EPS = 1e-5  # added to a unit's batch mean square, as torch's BatchNorm adds it to the variance


def normalized_params(weights, method: str, x) -> dict:
    """The trained parameters of ``method`` from the weights of :func:`relu_net`, each
    starting as the plain net of ``weights``: plain, the W_k themselves; ``wn``, V_k = W_k and
    one gain g_k = |W_k|_F per layer (W_k = g_k V_k / |V_k|_F); ``bn``, V_k = W_k and a scale
    gamma per hidden unit, the batch RMS of its pre-activation on ``x`` (so that gamma / sigma
    = 1, see :func:`normalized_forward`)."""
    leaf = lambda t: t.detach().clone().requires_grad_()  # noqa: E731
    if method == "plain":
        return {"W": [leaf(W) for W in weights]}
    if method == "wn":
        return {"V": [leaf(W) for W in weights], "g": [leaf(W.norm().reshape(1)) for W in weights]}
    if method == "bn":
        gammas, h = [], x
        with torch.no_grad():
            for W in weights[:-1]:
                z = h @ W.T
                gammas.append(torch.sqrt((z ** 2).mean(0) + BN_EPS))
                h = torch.relu(z)
        return {"V": [leaf(W) for W in weights], "gamma": [leaf(g) for g in gammas]}
    raise ValueError(f"method must be one of {NORMALIZATIONS}, not {method!r}")


def normalized_forward(params: dict, method: str, x) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """f(x) and the weight matrix each layer applies: plain W_k; WN g_k V_k / |V_k|_F;
    BN-like, for the batch ``x``, diag(gamma / sigma) V_k with sigma the batch RMS of each
    unit's pre-activation (no centring, so the net stays bias-free and homogeneous: with the
    batch's statistics frozen it is the plain net of these weights), the read-out V_L as it is."""
    if method == "plain":
        return forward(params["W"], x), list(params["W"])
    if method == "wn":
        eff = [g * V / V.norm() for V, g in zip(params["V"], params["g"])]
        return forward(eff, x), eff
    eff, h = [], x
    for V, gamma in zip(params["V"][:-1], params["gamma"]):
        z = h @ V.T
        scale = gamma / torch.sqrt((z ** 2).mean(0) + BN_EPS)
        eff.append(scale[:, None] * V)
        h = torch.relu(z * scale)
    eff.append(params["V"][-1])
    return (h @ eff[-1].T).squeeze(-1), eff


def unit_readout_norm(weights) -> float:
    """|W_L'|_F of the same bias-free net with every hidden unit's incoming weights scaled to
    unit norm and the scale carried into the next layer (ReLU is positively homogeneous: the
    function is unchanged); min_i y_i f(x_i) over it is the margin under per-unit
    normalization (m90-normalization: BN's own, as ``normalization.unit_normalized``)."""
    carry = None
    with torch.no_grad():
        for W in weights:
            W = W if carry is None else W * carry[None, :]
            carry = W.norm(dim=1)
        return float(W.norm())


def halpern_alpha(t: int, t0: float) -> float:
    """The anchor weight alpha_t = 1 / (t + t0) of step t of a Halpern iteration: alpha_t -> 0
    and sum_t alpha_t = infinity, Halpern's conditions for converging to the fixed point
    nearest the anchor (memo090's abstract: Halpern iterations for minimum norm solutions)."""
    return 1.0 / (t + float(t0))


def train_normalized(X, y, widths: list[int], method: str, steps: int, eta: float, seed: int = 0,
                     unbalance: float = 1.0, points: int = 80, loss: str = "exp",
                     halpern_t0: float | None = None) -> list[dict]:
    """Full-batch GD on the exponential loss (``loss="square"``: the mean of (f(x_i) - y_i)^2)
    of the deep homogeneous ReLU net of :func:`relu_net`, plain or normalized
    (:func:`normalized_params`), from a balanced init (every |W_k|_F the layers' mean, as
    :func:`rescale`) whose first layer is then scaled by ``unbalance`` and last by 1 /
    ``unbalance`` (:func:`unbalanced_scales`: the same function). ``method="nmgd"``: memo090's
    norm minimizing GD, plain GD on W_k as a Halpern iteration anchored at 0: each GD step T(W)
    is followed by W <- (1 - alpha_t) T(W) (:func:`halpern_alpha` with ``halpern_t0``), so it
    tends to the fixed point of GD of least norm sum_k |W_k|^2. Records at log-spaced
    steps: loss, train error, margin, normalized margin min_i y_i f(x_i) / prod_k |W_k|_F of
    the effective weights, the margin under per-unit normalization (``unit_margin``,
    :func:`unit_readout_norm`), and squared norms of the effective weights (``sq_eff_k``) and of
    the trained tensors (``sq_w_k``: W_k or V_k; ``sq_g_k``: g_k^2 of WN)."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, not {loss!r}")
    if method == "nmgd" and halpern_t0 is None:
        raise ValueError("nmgd needs halpern_t0")
    x = torch.as_tensor(X, dtype=torch.float64)
    yt = torch.as_tensor(y, dtype=torch.float64)
    weights = relu_net(widths, seed, 1.0)
    L = len(weights)
    rescale(weights, balanced=True, layer_scales=unbalanced_scales(L, unbalance))
    base = "plain" if method == "nmgd" else method
    params = normalized_params(weights, base, x)
    leaves = [t for group in params.values() for t in group]
    tensors = params["W"] if base == "plain" else params["V"]
    marks, records = log_times(steps, points) | {0}, []
    for t in range(steps + 1):
        out, eff = normalized_forward(params, base, x)
        m = yt * out
        value = torch.exp(-m).mean() if loss == "exp" else ((out - yt) ** 2).mean()
        if t in marks:
            with torch.no_grad():
                sq_eff = [float((W ** 2).sum()) for W in eff]
                row = margin_record(t, value, m, sq_eff)
                row["unit_margin"] = float(m.min()) / unit_readout_norm(eff)
                row.update({f"sq_eff_{k + 1}": s for k, s in enumerate(sq_eff)})
                row.update({f"sq_w_{k + 1}": float((T ** 2).sum()) for k, T in enumerate(tensors)})
                row.update({f"sq_g_{k + 1}": float(g ** 2) for k, g in enumerate(params.get("g", []))})
                records.append(row)
        if t == steps:
            break
        gd_step(value, leaves, eta)
        if method == "nmgd":
            with torch.no_grad():
                for p in leaves:
                    p.mul_(1.0 - halpern_alpha(t, halpern_t0))
    return records
