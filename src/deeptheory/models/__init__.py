"""The network families of the memos, built from (family, width, input shape, classes).

- ``allconv5``: memo073 Figs 1-4, a 5-layer all-convolutional net with no pooling and one
  width for every hidden layer. Four 3x3 convolutions (strides 2, 2, 2, 1) shrink the input
  to 4x4; a fifth convolution whose kernel covers that map gives the class scores. At
  width 16 on 32x32x3 inputs it has 9,978 weights (memo073: "W ~ 10000").
- ``cnn5``: memo100 Fig 4, a 5-layer CNN with pooling whose "number of neurons" is varied:
  four 3x3 convolutions of widths W, W, 2W, 2W (max-pool after the first three) and a linear
  read-out. Its neuron count is the number of hidden channels, 6W.
- ``cnn3``: memo100 Fig 3 (after the authors' code): two 5x5 convolutions, no padding and
  no pooling, and a linear layer; bias in the first layer only.
- ``polyconv5``: memo073 Figs 21-24, ``allconv5`` with every ReLU replaced by its degree-10
  polynomial fit (:data:`POLY_RELU`): a polynomial network of the same architecture.
- ``convnet``, ``localnet``, ``fcnet``: slides-locality, convolutional vs locally connected vs
  fully connected nets of one depth (``deeptheory.models.locality``).
- ``hcnn``, ``hcnnu``, ``hcnnwn``, ``hcnnbn``: m90-normalization, a bias-free homogeneous
  ReLU CNN plain, from an unbalanced init, weight- and batch-normalized
  (``deeptheory.models.normalization``).
- ``mlp``, ``alexnet``, ``inception``, ``wrn``, ``cudaconvnet``, ``resnet``: t3-archs and
  slides-zhang-table, Zhang et al.'s (2017) CIFAR-10 architectures (``deeptheory.models.archs``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from . import archs, locality, normalization
from .locality import LocallyConnected2d

FAMILIES = ("allconv5", "cnn5", "cnn3", "polyconv5", *locality.BUILDERS, *normalization.BUILDERS,
            *archs.BUILDERS)

# memo073 section 9.10: "all the RELU's replaced by a univariate polynomial approximation of
# degree 10". Ours: the least-squares fit of max(x, 0) at 2,001 Chebyshev points of [-12, 12]
# (max error 0.347, at 0: p(0) = 0.347, a smooth ReLU). The memo gives no interval. A
# narrower one fits ReLU better near 0 but leaves the pre-activations SGD reaches: outside
# it the polynomial grows like x^10 (the fit on [-4, 4] gives p(8) = 6,071) and the next
# layer overflows; with [-4, 4] every quick run but one diverged within 26 epochs, with
# [-8, 8] a run at N = 4,000 did by epoch 3 (docs/CATALOG.md, t3-poly). Not clipped: the
# polynomial is the net's own activation everywhere.
POLY_INTERVAL = 12.0
POLY_DEGREE = 10
_nodes = np.cos(np.linspace(0.0, np.pi, 2001)) * POLY_INTERVAL
POLY_RELU = tuple(float(c) for c in np.polynomial.polynomial.polyfit(_nodes, np.maximum(_nodes, 0.0), POLY_DEGREE))


class PolyReLU(nn.Module):
    """The degree-10 polynomial of :data:`POLY_RELU`, by Horner's rule (no parameters)."""

    def forward(self, x):
        out = torch.full_like(x, POLY_RELU[-1])
        for c in POLY_RELU[-2::-1]:
            out = out * x + c
        return out


def _conv_out(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def allconv5(width: int, input_shape, num_classes: int, activation=nn.ReLU) -> nn.Sequential:
    c, h, _ = input_shape
    layers, size, c_in = [], h, c
    for stride in (2, 2, 2, 1):
        layers += [nn.Conv2d(c_in, width, 3, stride=stride, padding=1), activation()]
        size, c_in = _conv_out(size, 3, stride, 1), width
    layers += [nn.Conv2d(width, num_classes, size), nn.Flatten()]
    return nn.Sequential(*layers)


def cnn5(width: int, input_shape, num_classes: int) -> nn.Sequential:
    c, h, _ = input_shape
    widths = (width, width, 2 * width, 2 * width)
    layers, size, c_in = [], h, c
    for i, w in enumerate(widths):
        layers += [nn.Conv2d(c_in, w, 3, padding=1), nn.ReLU()]
        c_in = w
        if i < 3:
            layers.append(nn.MaxPool2d(2))
            size //= 2
    layers += [nn.Flatten(), nn.Linear(c_in * size * size, num_classes)]
    return nn.Sequential(*layers)


def cnn3(width: int, input_shape, num_classes: int) -> nn.Sequential:
    c, h, _ = input_shape
    size = _conv_out(_conv_out(h, 5, 1, 0), 5, 1, 0)
    return nn.Sequential(
        nn.Conv2d(c, width, 5), nn.ReLU(),
        nn.Conv2d(width, width, 5, bias=False), nn.ReLU(),
        nn.Flatten(), nn.Linear(width * size * size, num_classes, bias=False),
    )


def polyconv5(width: int, input_shape, num_classes: int) -> nn.Sequential:
    return allconv5(width, input_shape, num_classes, activation=PolyReLU)


_BUILDERS = {"allconv5": allconv5, "cnn5": cnn5, "cnn3": cnn3, "polyconv5": polyconv5, **locality.BUILDERS,
             **normalization.BUILDERS, **archs.BUILDERS}


def build(family: str, width: int, input_shape, num_classes: int) -> nn.Module:
    if family not in _BUILDERS:
        raise ValueError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")
    return _BUILDERS[family](int(width), tuple(input_shape), int(num_classes))


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def n_neurons(family: str, width: int) -> int:
    """Hidden units counted as channels, the x axis of memo100 Fig 4."""
    return {"allconv5": 4 * width, "cnn5": 6 * width, "cnn3": 2 * width, "polyconv5": 4 * width,
            **{f: locality.DEPTH * width for f in locality.BUILDERS},
            **{f: 2 * width for f in normalization.BUILDERS},
            **{f: archs.n_neurons(f, width) for f in archs.BUILDERS}}[family]


@torch.no_grad()
def init_params(model: nn.Module, seed: int, scale: float = 1.0) -> None:
    """PyTorch's default init (uniform, bound 1/sqrt(fan_in)) from an explicit generator,
    times ``scale`` (memo073 Fig 17 compares init x1 with x10).

    Drawing from a per-run generator, not the global one, keeps a run's init the same
    whether it trains alone or packed with others. A model with a ``finish_init`` method
    finishes its own init after the draws (``deeptheory.models.normalization``: balanced or
    unbalanced layer norms, weight-normalization gains).
    """
    gen = torch.Generator().manual_seed(int(seed))
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear, LocallyConnected2d)):
            # A locally connected layer's weight[0] is every filter of one position: its
            # unit's fan-in is one filter, as for the convolution it unshares.
            fan_in = module.fan_in if isinstance(module, LocallyConnected2d) else module.weight[0].numel()
            bound = scale / math.sqrt(fan_in)
            module.weight.copy_(torch.rand(module.weight.shape, generator=gen) * 2 * bound - bound)
            if module.bias is not None:
                module.bias.copy_(torch.rand(module.bias.shape, generator=gen) * 2 * bound - bound)
    if hasattr(model, "finish_init"):
        model.finish_init()
