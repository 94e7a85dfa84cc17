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
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

FAMILIES = ("allconv5", "cnn5", "cnn3", "polyconv5")

# memo073 section 9.10: "all the RELU's replaced by a univariate polynomial approximation of
# degree 10". Ours: the least-squares fit of max(x, 0) at 2,001 Chebyshev points of [-4, 4]
# (max error 0.116, at 0). The interval covers the pre-activations of these nets at init
# (standardised inputs, default init: unit-order values that shrink with depth); outside it
# the polynomial grows like x^10, which is the polynomial net's own behaviour, not clipped.
POLY_INTERVAL = 4.0
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


_BUILDERS = {"allconv5": allconv5, "cnn5": cnn5, "cnn3": cnn3, "polyconv5": polyconv5}


def build(family: str, width: int, input_shape, num_classes: int) -> nn.Module:
    if family not in _BUILDERS:
        raise ValueError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")
    return _BUILDERS[family](int(width), tuple(input_shape), int(num_classes))


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def n_neurons(family: str, width: int) -> int:
    """Hidden units counted as channels, the x axis of memo100 Fig 4."""
    return {"allconv5": 4 * width, "cnn5": 6 * width, "cnn3": 2 * width, "polyconv5": 4 * width}[family]


@torch.no_grad()
def init_params(model: nn.Module, seed: int, scale: float = 1.0) -> None:
    """PyTorch's default init (uniform, bound 1/sqrt(fan_in)) from an explicit generator,
    times ``scale`` (memo073 Fig 17 compares init x1 with x10).

    Drawing from a per-run generator, not the global one, keeps a run's init the same
    whether it trains alone or packed with others.
    """
    gen = torch.Generator().manual_seed(int(seed))
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            fan_in = module.weight[0].numel()
            bound = scale / math.sqrt(fan_in)
            module.weight.copy_(torch.rand(module.weight.shape, generator=gen) * 2 * bound - bound)
            if module.bias is not None:
                module.bias.copy_(torch.rand(module.bias.shape, generator=gen) * 2 * bound - bound)
