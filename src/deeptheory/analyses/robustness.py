"""Norms, margins and robustness of a trained net: what memo073 measures in Figs 16, 17, 19
and 20, and the spectrally normalized margins of the slides (Bartlett, Foster and Telgarsky
2017).

The layers are the net's convolutions and linear maps in forward order (allconv5: four 3x3
convolutions and the last one, whose kernel covers its whole input map). Norms are of the
weights alone: a bias is an offset, not part of the linear map whose size they measure, and
memo073 folds it into a dummy input equal to 1. Margins are those of the trained net as it
is, biases included.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

EVAL_CHUNK = 1000


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


# --- norms (memo073 Figs 16, 17) ---------------------------------------------------------

def fan_in_l1(layer: nn.Module) -> torch.Tensor:
    """Per output unit (channel) the l1 norm of its fan-in weights: sum of |w| over its inputs
    (for a convolution, over its kernel: every position of the map shares it)."""
    return layer.weight.detach().abs().flatten(1).sum(1)


def l2_norm(model: nn.Module) -> float:
    """The l2 norm of the whole parameter vector, weights and biases (what init x10 scales)."""
    return float(torch.sqrt(sum((p.detach().double() ** 2).sum() for p in model.parameters())))


def frobenius_norms(model: nn.Module) -> list[float]:
    return [float(layer.weight.detach().double().norm()) for _, layer in weight_layers(model)]


# --- margins -----------------------------------------------------------------------------

@torch.no_grad()
def logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([model(x[i : i + EVAL_CHUNK]) for i in range(0, len(x), EVAL_CHUNK)])


def margins(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Functional margin of each example on its label: f_y(x) - max over j != y of f_j(x);
    positive exactly where the net classifies it right (ties aside)."""
    true = scores.gather(1, y[:, None])[:, 0]
    others = scores.scatter(1, y[:, None], float("-inf")).amax(1)
    return true - others


# --- spectral norms ----------------------------------------------------------------------

def input_shapes(model: nn.Module, shape) -> dict[str, tuple]:
    """The input shape (C, H, W or features) each weight layer sees on inputs of ``shape``."""
    seen, hooks = {}, []

    def record(name):
        def hook(module, args):  # returns None: the input goes on unchanged
            seen[name] = tuple(args[0].shape[1:])
        return hook
    for name, layer in weight_layers(model):
        hooks.append(layer.register_forward_pre_hook(record(name)))
    try:
        with torch.no_grad():
            model(torch.zeros(1, *shape, device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
    return seen


@torch.no_grad()
def spectral_norm(layer: nn.Module, in_shape: tuple, iterations: int, gen: torch.Generator) -> float:
    """Operator norm of the layer's linear part (no bias) as a map on inputs of ``in_shape``:
    power iteration on A^T A, A the convolution and A^T its transpose (conv_transpose2d,
    with the output padding that restores ``in_shape``). Converges from below."""
    w = layer.weight.detach().double()
    if isinstance(layer, nn.Linear):
        return float(torch.linalg.matrix_norm(w, ord=2))
    kw = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation, groups=layer.groups)
    v = torch.randn((1, *in_shape), generator=gen, dtype=torch.float64).to(w.device)
    out_shape = F.conv2d(v, w, **kw).shape[2:]
    pad = tuple(n - ((o - 1) * s - 2 * p + d * (k - 1) + 1)
                for n, o, s, p, d, k in zip(in_shape[1:], out_shape, layer.stride, layer.padding, layer.dilation,
                                            w.shape[2:]))
    for _ in range(iterations):
        v = v / v.norm()
        v = F.conv_transpose2d(F.conv2d(v, w, **kw), w, output_padding=pad, **kw)
    v = v / v.norm()
    return float(F.conv2d(v, w, **kw).norm())


def spectral_norms(model: nn.Module, shape, iterations: int, seed: int) -> list[float]:
    gen = torch.Generator().manual_seed(int(seed))
    shapes = input_shapes(model, shape)
    return [spectral_norm(layer, shapes[name], iterations, gen) for name, layer in weight_layers(model)]


# --- perturbed training images (memo073 eq. 47) ------------------------------------------

def noise_draw(shape, seed: int, subset_seed: int, draw: int) -> torch.Tensor:
    """The eps_i of eq. 47 for one draw: standard Gaussian per pixel, seeded by (seed, the
    subset's seed, draw), so the nets fit to one subset (natural and random labels) see the
    same noise."""
    state = np.random.SeedSequence([int(seed), int(subset_seed), int(draw)]).generate_state(1)[0]
    return torch.randn(shape, generator=torch.Generator().manual_seed(int(state)))


@torch.no_grad()
def perturbed_errors(model: nn.Module, x: torch.Tensor, y: torch.Tensor, std: torch.Tensor, gammas, draws: int,
                     seed: int, subset_seed: int) -> np.ndarray:
    """Eq. 47, E(f, S, gamma) = mean_i 1[f(x_i + gamma eps_i) != y_i], for each draw (rows)
    and gamma (columns). gamma is in pixel units of images in [0, 1]: in the normalised
    inputs the noise is gamma eps / std per channel. No clipping to [0, 1]: eq. 47 has none.
    A draw's eps is shared by every gamma, so each curve is one noise field grown."""
    out = np.empty((draws, len(gammas)))
    for d in range(draws):
        eps = noise_draw(x.shape, seed, subset_seed, d).to(x.device) / std.to(x.device)
        for j, gamma in enumerate(gammas):
            out[d, j] = float((logits(model, x + gamma * eps).argmax(1) != y).double().mean())
    return out


def example_images(x0: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, gammas, seed: int,
                   subset_seed: int) -> np.ndarray:
    """One training image in pixel scale, clean and plus gamma eps for each gamma (one eps,
    seeded as draw 0 is, grown), clipped to [0, 1] for display: (1 + len(gammas), C, H, W)."""
    pixel = (x0.cpu()[None] * std + mean)[0]
    eps = noise_draw((1, *x0.shape), seed, subset_seed, 0)[0]
    return np.stack([pixel.numpy()] + [(pixel + g * eps).clamp(0, 1).numpy() for g in gammas])
