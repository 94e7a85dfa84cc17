"""memo090's normalized networks: a bias-free homogeneous ReLU CNN, plain, with weight
normalization (WN) and with batch normalization (BN), from a balanced or an unbalanced
init (target m90-normalization).

Every family is two 5x5 convolutions of width w without padding and a linear read-out
(``cnn3`` of memo100 Fig 3 without its first-layer bias), ReLU after each convolution:

- ``hcnn``: plain. No bias anywhere, so f is positively homogeneous of degree 1 in each
  layer's weights W_k and of degree 3 in all of them: f(c W_k) = c f(W_k).
- ``hcnnu``: ``hcnn`` from an unbalanced init (first layer x r, last x 1/r, r =
  :data:`UNBALANCE`): the same function as ``hcnn`` at init, other layer norms.
- ``hcnnwn``: every layer (the read-out too) weight-normalized with one scalar gain per
  layer, W_k = g_k V_k / |V_k|_F: memo100 section 3.D's W_k = rho_k V_k with |V_k| = 1,
  whose GD it shows to be weight normalization (Salimans and Kingma's g is per output unit;
  the memo's rho_k is per layer). V_k and g_k are plain parameters (``weight`` and
  ``gain``), not torch's parametrization, so ``functional_call`` and ``vmap`` pack them.
- ``hcnnbn``: a BatchNorm2d after each convolution (before its ReLU), with its affine
  scale and shift. ``track_running_stats=False``: batch statistics in training and in
  evaluation alike, since the packed engine carries no buffers. Under full-batch GD the
  training batch is the whole training subset, so training and the analysis see the same
  statistics; an evaluation in chunks (``run.EVAL_CHUNK``) or on the test set uses those
  of its chunk.

Init (``finish_init``, which ``models.init_params`` calls after its draws): every family
draws PyTorch's default, then the layers are *balanced*: each weight tensor rescaled to the
geometric mean of their Frobenius norms, so every |W_k|^2 is equal and their product, hence
the plain net's function, is unchanged. ``hcnnu`` then multiplies the first layer by r and
the last by 1/r. A WN layer's gain starts at |V_k|, so hcnnwn computes hcnn's function
at init, from the same draws. (A BN layer's scale-invariance makes its conv weights' norms
irrelevant to its function.)

The *effective weight* of a layer, whose Frobenius norms the normalized margin divides by
(:func:`effective_layers`): plain, W_k; WN, g_k V_k / |V_k|_F (norm |g_k|); BN, the linear
part of the layer with the training-set batch statistics frozen, row c of the conv weight V
times gamma_c / sigma_c (sigma_c^2 the biased variance of channel c over the batch and its
positions, plus BN's eps). The BN layer also has an effective bias beta_c - gamma_c mu_c /
sigma_c, which no norm counts: a BN net is not homogeneous, and its margin over the product
of effective norms leaves that freedom out.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

KERNEL, STRIDE = 5, 2
UNBALANCE = 4.0  # hcnnu: first layer x 4 at init, last x 1/4 (|W_1|^2 16x, |W_3|^2 1/16x the balanced value)


def _conv_out(size: int) -> int:
    return (size - KERNEL) // STRIDE + 1


class WNConv2d(nn.Conv2d):
    """A bias-free convolution W = g V / |V|_F: ``weight`` is V, ``gain`` the layer's g."""

    def __init__(self, c_in: int, c_out: int, kernel: int):
        super().__init__(c_in, c_out, kernel, stride=STRIDE, bias=False)
        self.gain = nn.Parameter(torch.ones(1))

    def effective_weight(self) -> torch.Tensor:
        return self.gain * self.weight / self.weight.norm()

    def forward(self, x):
        return self._conv_forward(x, self.effective_weight(), None)


class WNLinear(nn.Linear):
    """A bias-free linear layer W = g V / |V|_F."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__(n_in, n_out, bias=False)
        self.gain = nn.Parameter(torch.ones(1))

    def effective_weight(self) -> torch.Tensor:
        return self.gain * self.weight / self.weight.norm()

    def forward(self, x):
        return F.linear(x, self.effective_weight())


WN_LAYERS = (WNConv2d, WNLinear)


class HomogeneousCNN(nn.Sequential):
    """The three layers with their kind ("plain", "wn", "bn") and init rule."""

    def __init__(self, kind: str, width: int, input_shape, num_classes: int, unbalance: float = 1.0):
        c, h, _ = input_shape
        size = _conv_out(_conv_out(h))
        conv = (lambda i, o: WNConv2d(i, o, KERNEL)) if kind == "wn" else (
            lambda i, o: nn.Conv2d(i, o, KERNEL, stride=STRIDE, bias=False))
        linear = WNLinear if kind == "wn" else (lambda i, o: nn.Linear(i, o, bias=False))
        layers = []
        for c_in in (c, width):
            layers.append(conv(c_in, width))
            if kind == "bn":
                layers.append(nn.BatchNorm2d(width, track_running_stats=False))
            layers.append(nn.ReLU())
        layers += [nn.Flatten(), linear(width * size * size, num_classes)]
        super().__init__(*layers)
        self.kind, self.unbalance = kind, float(unbalance)

    def weight_layers(self) -> list[nn.Module]:
        return [m for m in self if isinstance(m, (nn.Conv2d, nn.Linear))]

    @torch.no_grad()
    def finish_init(self) -> None:
        """Balance the drawn layers, unbalance by r and 1/r where asked, start each WN gain
        at |V_k| (module docstring)."""
        layers = self.weight_layers()
        norms = [float(m.weight.norm()) for m in layers]
        mean = math.exp(sum(math.log(n) for n in norms) / len(norms))
        factors = [mean / n for n in norms]
        factors[0] *= self.unbalance
        factors[-1] /= self.unbalance
        for m, f in zip(layers, factors):
            m.weight.mul_(f)
            if isinstance(m, WN_LAYERS):
                m.gain.fill_(float(m.weight.norm()))


def hcnn(width: int, input_shape, num_classes: int) -> HomogeneousCNN:
    return HomogeneousCNN("plain", width, input_shape, num_classes)


def hcnnu(width: int, input_shape, num_classes: int) -> HomogeneousCNN:
    return HomogeneousCNN("plain", width, input_shape, num_classes, unbalance=UNBALANCE)


def hcnnwn(width: int, input_shape, num_classes: int) -> HomogeneousCNN:
    return HomogeneousCNN("wn", width, input_shape, num_classes)


def hcnnbn(width: int, input_shape, num_classes: int) -> HomogeneousCNN:
    return HomogeneousCNN("bn", width, input_shape, num_classes)


BUILDERS = {"hcnn": hcnn, "hcnnu": hcnnu, "hcnnwn": hcnnwn, "hcnnbn": hcnnbn}


# --- effective weights and the normalized margin ---------------------------------------------

@torch.no_grad()
def effective_layers(model: HomogeneousCNN, x: torch.Tensor) -> list[torch.Tensor]:
    """The effective weight of each layer (module docstring), BN's from the batch ``x``."""
    out, h = [], x
    for m in model:
        if isinstance(m, nn.BatchNorm2d):
            var = h.var(dim=(0, 2, 3), unbiased=False)
            scale = m.weight / torch.sqrt(var + m.eps)
            out[-1] = out[-1] * scale.view(-1, *([1] * (out[-1].dim() - 1)))
        elif isinstance(m, WN_LAYERS):
            out.append(m.effective_weight())
        elif isinstance(m, (nn.Conv2d, nn.Linear)):
            out.append(m.weight)
        h = m(h)
    return out


def squared_norms(model: HomogeneousCNN) -> dict[str, float]:
    """Squared Frobenius norms of the parameters layer by layer: |W_k|^2 (plain; V_k for WN
    and BN), and g_k^2 (WN) or |gamma_k|^2 (BN)."""
    out = {}
    for k, m in enumerate(model.weight_layers(), 1):
        out[f"sq_w{k}"] = float((m.weight.detach().double() ** 2).sum())
        if isinstance(m, WN_LAYERS):
            out[f"sq_g{k}"] = float(m.gain.detach().double() ** 2)
    bns = [m for m in model if isinstance(m, nn.BatchNorm2d)]
    for k, m in enumerate(bns, 1):
        out[f"sq_gamma{k}"] = float((m.weight.detach().double() ** 2).sum())
    return out


def margins(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """f_y(x_i) - max_{j != y_i} f_j(x_i) for each i: positive where x_i is classified right."""
    true = logits.gather(1, y[:, None])[:, 0]
    others = logits.scatter(1, y[:, None], float("-inf"))
    return true - others.max(1).values


@torch.no_grad()
def normalized_margin(model: HomogeneousCNN, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """The net on (x, y) as one batch: min_i margin_i over the product of the layers'
    effective Frobenius norms, with the margin and each effective norm."""
    model = model.eval()
    m = margins(model(x).double(), y)
    norms = [float(w.double().norm()) for w in effective_layers(model, x)]
    rho = math.prod(norms)
    return {"margin": float(m.min()), "rho": rho, "normalized_margin": float(m.min()) / rho,
            **{f"eff_norm{k}": v for k, v in enumerate(norms, 1)}}
