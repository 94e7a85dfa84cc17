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
  statistics; an evaluation in chunks (``run.evaluation.EVAL_CHUNK``) or on the test set uses those
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
sigma_c, which the per-layer norms do not count: a BN net is not homogeneous, and its margin
over the product of effective norms leaves that freedom out.

The margin under BN's own, per-unit, normalization (:func:`unit_normalized_margin`) counts
it: each hidden unit's effective (w_c, b_c) jointly is scaled to unit norm and its scale
carried into the next layer's inputs (ReLU is positively homogeneous, so the function is
unchanged), which leaves the whole scale of the net in the read-out: the margin over the
read-out's norm. BN fixes each unit's pre-activation to unit variance and leaves the unit's
(gamma_c, beta_c) free, so the freedom it normalizes is per unit, bias included. A plain net
is measured the same way (its biases are 0), so the two can be paired.
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
def affine_pass(model: HomogeneousCNN, x: torch.Tensor) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
    """One pass of the net on the batch ``x``: the (weight, bias) of each layer's affine part
    with BN's batch statistics frozen, and the net's output. The weight is the effective
    weight (module docstring); the bias is BN's beta_c - gamma_c mu_c / sigma_c, 0 elsewhere
    (the families have no other bias)."""
    out, h = [], x
    for m in model:
        if isinstance(m, nn.BatchNorm2d):
            mu = h.mean(dim=(0, 2, 3))
            sigma = torch.sqrt(h.var(dim=(0, 2, 3), unbiased=False) + m.eps)
            W, _ = out[-1]
            out[-1] = (W * (m.weight / sigma).view(-1, *([1] * (W.dim() - 1))), m.bias - m.weight * mu / sigma)
        elif isinstance(m, (WN_LAYERS, nn.Conv2d, nn.Linear)):
            W = m.effective_weight() if isinstance(m, WN_LAYERS) else m.weight
            out.append((W, torch.zeros(W.shape[0], dtype=W.dtype, device=W.device)))
        h = m(h)
    return out, h


def effective_layers(model: HomogeneousCNN, x: torch.Tensor) -> list[torch.Tensor]:
    """The effective weight of each layer (module docstring), BN's from the batch ``x``."""
    return [W for W, _ in affine_pass(model, x)[0]]


def unit_normalized(units: list[tuple[torch.Tensor, torch.Tensor]]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The same net with every hidden unit's (w_c, b_c) of unit norm (module docstring): unit
    c of a layer divided by n_c = |(w_c, b_c)|, the next layer's weights on its input c (for
    the read-out, on every position of channel c) times n_c. The read-out keeps its scale."""
    out, carry = [], None
    for k, (W, b) in enumerate(units):
        W, b = W.double(), b.double()
        if carry is not None:
            if W.dim() == 2 and len(carry) != W.shape[1]:  # the read-out of the flattened (channel, position) map
                W = (W.view(W.shape[0], len(carry), -1) * carry[None, :, None]).view_as(W)
            else:
                W = W * carry.view(1, -1, *([1] * (W.dim() - 2)))
        if k == len(units) - 1:
            out.append((W, b))
            break
        n = torch.sqrt((W.flatten(1) ** 2).sum(1) + b ** 2)
        out.append((W / n.view(-1, *([1] * (W.dim() - 1))), b / n))
        carry = n
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
    effective Frobenius norms, with the margin and each effective norm; and ``unit_margin``,
    min_i margin_i over the read-out's norm ``unit_rho`` once every hidden unit's (w_c, b_c)
    is of unit norm (:func:`unit_normalized`). With the training loss and error of that pass."""
    model = model.eval()
    units, logits = affine_pass(model, x)
    logits = logits.double()
    m = float(margins(logits, y).min())
    norms = [float(W.double().norm()) for W, _ in units]
    rho = math.prod(norms)
    readout = float(unit_normalized(units)[-1][0].norm())
    return {"margin": m, "rho": rho, "normalized_margin": m / rho, "unit_rho": readout, "unit_margin": m / readout,
            "loss": float(F.cross_entropy(logits, y)), "err": float((logits.argmax(1) != y).double().mean()),
            **{f"eff_norm{k}": v for k, v in enumerate(norms, 1)}}
