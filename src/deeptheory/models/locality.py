"""The three families of slides-locality (slides "Locality of constituent functions is key:
CIFAR"; memo100 section 1.A: "the key aspect of convolutional networks that can give them an
exponential advantage is not weight sharing but locality at each level of the hierarchy").

All three have the same depth: three hidden layers and a linear read-out.

- ``convnet``: three 3x3 convolutions, stride 2, padding 1 (local, weights shared across
  positions). On 28x28 or 32x32 inputs the maps shrink to 14, 7, 4 or 16, 8, 4.
- ``localnet``: the same kernels, strides and padding, so the same receptive field at every
  layer, but a separate filter (and bias) at every output position
  (:class:`LocallyConnected2d`): local, no sharing.
- ``fcnet``: three fully connected hidden layers (not local, nothing shared).

``width`` is the channels of every hidden layer (convnet, localnet) or the hidden units of
every layer (fcnet). W with 10 classes, on 28x28x1 inputs / 32x32x3 (CIFAR-10):
convnet 18w^2 + 172w + 10 / 18w^2 + 190w + 10; localnet 585w^2 + 2185w + 10 /
720w^2 + 7408w + 10; fcnet 2w^2 + 797w + 10 / 2w^2 + 3085w + 10 (tests/test_locality.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

DEPTH = 3      # hidden layers of every family
KERNEL = 3
STRIDE = 2
PAD = 1


def _out(size: int) -> int:
    return (size + 2 * PAD - KERNEL) // STRIDE + 1


class LocallyConnected2d(nn.Module):
    """A convolution's receptive fields with a separate filter at every output position.

    ``weight`` has shape (positions, out, in x k x k): row p is the flattened filter of output
    position p, in the order of ``nn.Conv2d.weight.reshape(out, -1)`` (channel, then kernel
    row, then column), so a weight whose rows are all one conv kernel computes that
    convolution. ``bias`` is (positions, out). Plain parameters and a functional forward
    (``unfold`` and one batched matrix product), so ``torch.func.functional_call`` and ``vmap`` (the packed
    engine) handle it like a Conv2d.
    """

    def __init__(self, in_channels: int, out_channels: int, in_size: tuple[int, int], kernel_size: int,
                 stride: int = 1, padding: int = 0, bias: bool = True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.out_size = tuple((s + 2 * padding - kernel_size) // stride + 1 for s in in_size)
        positions = self.out_size[0] * self.out_size[1]
        self.weight = nn.Parameter(torch.empty(positions, out_channels, in_channels * kernel_size ** 2))
        self.register_parameter("bias", nn.Parameter(torch.empty(positions, out_channels)) if bias else None)

    @property
    def fan_in(self) -> int:
        """Inputs of one output unit: in x k x k, as for the convolution it unshares."""
        return self.weight.shape[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patches = F.unfold(x, self.kernel_size, padding=self.padding, stride=self.stride)  # (B, in k k, P)
        # One filter per position p: the einsum "bip,poi->bop" as a matrix product batched over
        # positions. Contiguous (P, B, in k k) patches make it 1.6x faster on a CPU core.
        out = torch.bmm(patches.permute(2, 0, 1).contiguous(), self.weight.transpose(1, 2))  # (P, B, out)
        if self.bias is not None:
            out = out + self.bias[:, None, :]
        return out.permute(1, 2, 0).reshape(x.shape[0], self.out_channels, *self.out_size)


def convnet(width: int, input_shape, num_classes: int) -> nn.Sequential:
    c, h, _ = input_shape
    layers, size = [], h
    for i in range(DEPTH):
        layers += [nn.Conv2d(c if i == 0 else width, width, KERNEL, stride=STRIDE, padding=PAD), nn.ReLU()]
        size = _out(size)
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(width * size * size, num_classes))


def localnet(width: int, input_shape, num_classes: int) -> nn.Sequential:
    c, h, w = input_shape
    layers, size = [], (h, w)
    for i in range(DEPTH):
        layer = LocallyConnected2d(c if i == 0 else width, width, size, KERNEL, stride=STRIDE, padding=PAD)
        layers += [layer, nn.ReLU()]
        size = layer.out_size
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(width * size[0] * size[1], num_classes))


def fcnet(width: int, input_shape, num_classes: int) -> nn.Sequential:
    c, h, w = input_shape
    layers, d_in = [nn.Flatten()], c * h * w
    for _ in range(DEPTH):
        layers += [nn.Linear(d_in, width), nn.ReLU()]
        d_in = width
    return nn.Sequential(*layers, nn.Linear(d_in, num_classes))


BUILDERS = {"convnet": convnet, "localnet": localnet, "fcnet": fcnet}
