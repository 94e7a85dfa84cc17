"""The architectures of memo073 Table 2 and the slides' table "Why big models generalize
well?", both Zhang et al. (2017) Table 1 on CIFAR-10 with the regularizers off.

Every family starts with Zhang et al.'s input stage, parameter-free (:class:`ZhangInput`):
the center 28x28 crop and per-image whitening (``tf.image.per_image_standardization``). The
data pipeline is unchanged, so 28x28 inputs (the offline Fashion-MNIST) pass through it
uncropped. It whitens the pipeline's per-channel-normalized pixels, not the raw ones: on
CIFAR-10 the channel std's (0.247, 0.243, 0.261) are close, so this is nearly Zhang's.

``width`` scales every layer's size; at the paper width (:data:`PAPER_WIDTH`) the families
are, with their weight counts on 28x28x3 inputs and 10 classes (tests/test_archs.py):

- ``mlp``: one hidden layer of ``width`` ReLU units (MLP 1x512: 1,209,866, exact).
- ``alexnet``: Zhang et al.'s small AlexNet, the TensorFlow CIFAR-10 tutorial's net:
  conv 5x5 64, max-pool 3x3/2 SAME, LRN, conv 5x5 64, LRN, max-pool, fc 384, fc 192, fc 10
  (1,387,786, exact).
- ``inception``: Zhang et al.'s small Inception (their Fig. 3), also the slides'
  MicroInception: conv modules (conv, batch norm, ReLU), Inception modules (1x1 and 3x3 conv
  modules concatenated) and downsample modules (3x3/2 conv module and 3x3/2 max-pool
  concatenated), global mean pooling, fc 10. Batch norm as TensorFlow's default
  ``batch_norm`` (a shift, no scale: the ReLU after it makes a scale redundant), convs
  without bias (1,649,402, exact).
- ``wrn``: the Wide ResNet WRN-40-4 of Zagoruyko and Komodakis (2016): pre-activation basic
  blocks, 6 per group, group widths 64, 128, 256, 1x1 projection shortcuts where the width
  changes (8,949,210: exactly memo073's Wide Resnet row, whose source the memo does not give).
  ``width`` is the first group's width (16 k for WRN-40-k); the stem has width / 4.
- ``cudaconvnet``: the slides' CudaConvNet, cuda-convnet's ``layers-80sec.cfg``: conv 5x5 32,
  max-pool 3x3/2, conv 5x5 32, avg-pool 3x3/2, conv 5x5 64, avg-pool 3x3/2, fc 64, fc 10, ReLU
  after each conv (and fc 64) (145,578, exact).
- ``resnet``: the slides' ResNet (2,401,440 published, architecture not given). Ours: He et
  al.'s (2016) CIFAR ResNet-20 (3 stages of 3 basic blocks, identity shortcuts zero-padded
  where the width changes, option A) at three times its widths, 48, 96, 192: 2,412,730, 0.5%
  above the published count, the nearest of that family at whole multiples of its widths
  (ResNet-44 x2 has 9% more, ResNet-32 x2 23% fewer). No ResNet or WRN variant we tried has
  the count exactly.

Batch norm is ``track_running_stats=False`` throughout: the packed engine trains parameters
only, so evaluation uses the statistics of each evaluated chunk (1,000 images), not running
averages.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

CROP = 28  # Zhang et al. crop CIFAR-10's 32x32 images to their center 28x28

# The width of each family at which it is the published architecture.
PAPER_WIDTH = {"mlp": 512, "alexnet": 64, "inception": 96, "wrn": 64, "cudaconvnet": 32, "resnet": 48}
# Weight counts published for those architectures (memo073 Table 2; slides; Zhang et al. Table 1).
PUBLISHED_PARAMS = {"mlp": 1_209_866, "alexnet": 1_387_786, "inception": 1_649_402, "wrn": 8_949_210,
                    "cudaconvnet": 145_578, "resnet": 2_401_440}

WRN_BLOCKS = 6      # WRN-40: (40 - 4) / 6 blocks per group
RESNET_BLOCKS = 3   # ResNet-20: (20 - 2) / 6 blocks per stage

# Zhang et al.'s small Inception after the stem: ("inception", 1x1 channels, 3x3 channels) or
# ("down", 3x3/2 channels), at the paper width 96.
INCEPTION_PLAN = (("inception", 32, 32), ("inception", 32, 48), ("down", 80),
                  ("inception", 112, 48), ("inception", 96, 64), ("inception", 80, 80), ("inception", 48, 96),
                  ("down", 96), ("inception", 176, 160), ("inception", 176, 160))


def scaled(channels: int, width: int, family: str) -> int:
    """A layer's size at ``width``: its published size times width / paper width."""
    return max(1, round(channels * width / PAPER_WIDTH[family]))


class ZhangInput(nn.Module):
    """Center crop to 28x28 (inputs no larger pass as they are) and per-image
    standardization: (x - mean) / max(std, 1 / sqrt(pixels)), mean and std over the image."""

    def forward(self, x):
        h, w = x.shape[-2:]
        top, left = max(0, (h - CROP) // 2), max(0, (w - CROP) // 2)
        x = x[..., top : top + CROP, left : left + CROP]
        mean = x.mean(dim=(-3, -2, -1), keepdim=True)
        std = x.std(dim=(-3, -2, -1), keepdim=True, correction=0)
        return (x - mean) / std.clamp(min=1.0 / math.sqrt(x[0].numel()))


def _cropped(input_shape) -> tuple[int, int, int]:
    c, h, w = input_shape
    return c, min(h, CROP), min(w, CROP)


def batch_norm(channels: int) -> nn.BatchNorm2d:
    """Batch statistics in training and evaluation alike (no running averages to carry)."""
    return nn.BatchNorm2d(channels, track_running_stats=False)


class BatchNormShift(nn.Module):
    """TensorFlow's default batch norm: normalize by batch statistics, then add a learned
    shift per channel (``center=True, scale=False``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False, track_running_stats=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        return self.norm(x) + self.bias.view(-1, 1, 1)


class LRN(nn.Module):
    """Local response normalization across channels, as the tutorial's ``tf.nn.lrn(x,
    depth_radius=4, bias=1, alpha=0.001 / 9, beta=0.75)``: x / (bias + alpha x the sum of x^2
    over the 2 x radius + 1 nearest channels)^beta. The same as ``nn.LocalResponseNorm(9,
    alpha=0.001, beta=0.75, k=1)``, whose 3-D average pool takes half of a CPU step; a
    cumulative sum over channels computes the window sums at a fraction of that."""

    def __init__(self, radius: int = 4, bias: float = 1.0, alpha: float = 0.001 / 9, beta: float = 0.75):
        super().__init__()
        self.radius, self.bias, self.alpha, self.beta = radius, bias, alpha, beta

    def forward(self, x):
        r, c = self.radius, x.shape[-3]
        # radius + 1 zero channels in front, so that window d is cum[d + 2r + 1] - cum[d]
        cum = F.pad(x.square(), (0, 0, 0, 0, r + 1, r)).cumsum(dim=-3)
        window = cum[..., 2 * r + 1 :, :, :] - cum[..., :c, :, :]
        return x / (self.bias + self.alpha * window) ** self.beta


def _pool_size(size: int) -> int:
    """A 3x3/2 pooling with one pixel of padding: TensorFlow's SAME size, ceil(size / 2)."""
    return (size + 2 - 3) // 2 + 1


# --- MLP, AlexNet, CudaConvNet -------------------------------------------------------------

def mlp(width: int, input_shape, num_classes: int) -> nn.Sequential:
    c, h, w = _cropped(input_shape)
    return nn.Sequential(ZhangInput(), nn.Flatten(), nn.Linear(c * h * w, width), nn.ReLU(),
                         nn.Linear(width, num_classes))


def alexnet(width: int, input_shape, num_classes: int) -> nn.Sequential:
    c, h, _ = _cropped(input_shape)
    conv, fc1, fc2 = width, scaled(384, width, "alexnet"), scaled(192, width, "alexnet")
    size = _pool_size(_pool_size(h))
    return nn.Sequential(
        ZhangInput(),
        nn.Conv2d(c, conv, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2, padding=1), LRN(),
        nn.Conv2d(conv, conv, 5, padding=2), nn.ReLU(), LRN(), nn.MaxPool2d(3, 2, padding=1),
        nn.Flatten(), nn.Linear(conv * size * size, fc1), nn.ReLU(), nn.Linear(fc1, fc2), nn.ReLU(),
        nn.Linear(fc2, num_classes))


def cudaconvnet(width: int, input_shape, num_classes: int) -> nn.Sequential:
    c, h, _ = _cropped(input_shape)
    c1, c3 = width, scaled(64, width, "cudaconvnet")
    size = _pool_size(_pool_size(_pool_size(h)))
    avg = lambda: nn.AvgPool2d(3, 2, padding=1, count_include_pad=False)  # noqa: E731
    return nn.Sequential(
        ZhangInput(),
        nn.Conv2d(c, c1, 5, padding=2), nn.MaxPool2d(3, 2, padding=1), nn.ReLU(),
        nn.Conv2d(c1, c1, 5, padding=2), nn.ReLU(), avg(),
        nn.Conv2d(c1, c3, 5, padding=2), nn.ReLU(), avg(),
        nn.Flatten(), nn.Linear(c3 * size * size, c3), nn.ReLU(), nn.Linear(c3, num_classes))


# --- Inception -----------------------------------------------------------------------------

def conv_module(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
                         BatchNormShift(c_out), nn.ReLU())


class InceptionModule(nn.Module):
    def __init__(self, c_in: int, ch1: int, ch3: int):
        super().__init__()
        self.branch1, self.branch3 = conv_module(c_in, ch1, 1), conv_module(c_in, ch3, 3)

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch3(x)], dim=-3)


class DownsampleModule(nn.Module):
    def __init__(self, c_in: int, ch3: int):
        super().__init__()
        self.conv = conv_module(c_in, ch3, 3, stride=2)
        self.pool = nn.MaxPool2d(3, 2, padding=1)

    def forward(self, x):
        return torch.cat([self.conv(x), self.pool(x)], dim=-3)


def inception(width: int, input_shape, num_classes: int) -> nn.Sequential:
    c = input_shape[0]
    layers, c_in = [ZhangInput(), conv_module(c, width, 3)], width
    for kind, *chans in INCEPTION_PLAN:
        chans = [scaled(ch, width, "inception") for ch in chans]
        if kind == "inception":
            layers.append(InceptionModule(c_in, *chans))
            c_in = sum(chans)
        else:
            layers.append(DownsampleModule(c_in, chans[0]))
            c_in += chans[0]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes))


# --- residual nets -------------------------------------------------------------------------

class WideBlock(nn.Module):
    """WRN's pre-activation basic block: BN-ReLU-conv3x3-BN-ReLU-conv3x3, plus the input
    (through a 1x1 projection of BN-ReLU(input) where the width or the stride changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.bn1, self.conv1 = batch_norm(c_in), nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = batch_norm(c_out), nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.shortcut = (nn.Conv2d(c_in, c_out, 1, stride, bias=False) if c_in != c_out or stride != 1 else None)

    def forward(self, x):
        a = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(a))))
        return out + (x if self.shortcut is None else self.shortcut(a))


def wrn(width: int, input_shape, num_classes: int) -> nn.Sequential:
    stem = max(1, width // 4)
    layers, c_in = [ZhangInput(), nn.Conv2d(input_shape[0], stem, 3, padding=1, bias=False)], stem
    for group, stride in enumerate((1, 2, 2)):
        c_out = width * 2 ** group
        for b in range(WRN_BLOCKS):
            layers.append(WideBlock(c_in, c_out, stride if b == 0 else 1))
            c_in = c_out
    return nn.Sequential(*layers, batch_norm(c_in), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(c_in, num_classes))


class BasicBlock(nn.Module):
    """He et al.'s basic block: conv3x3-BN-ReLU-conv3x3-BN, plus the input, then ReLU. Where
    the width or the stride changes, the shortcut subsamples and pads the new channels with
    zeros (option A: no parameters)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), batch_norm(c_out)
        self.conv2, self.bn2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), batch_norm(c_out)
        self.stride, self.pad = stride, c_out - c_in

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        short = x[..., :: self.stride, :: self.stride]
        if self.pad:
            short = F.pad(short, (0, 0, 0, 0, 0, self.pad))
        return F.relu(out + short)


def resnet(width: int, input_shape, num_classes: int) -> nn.Sequential:
    layers = [ZhangInput(), nn.Conv2d(input_shape[0], width, 3, padding=1, bias=False), batch_norm(width), nn.ReLU()]
    c_in = width
    for stage, stride in enumerate((1, 2, 2)):
        c_out = width * 2 ** stage
        for b in range(RESNET_BLOCKS):
            layers.append(BasicBlock(c_in, c_out, stride if b == 0 else 1))
            c_in = c_out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes))


BUILDERS = {"mlp": mlp, "alexnet": alexnet, "inception": inception, "wrn": wrn, "cudaconvnet": cudaconvnet,
            "resnet": resnet}


def n_neurons(family: str, width: int) -> int:
    """Hidden units: the output channels of every hidden conv layer plus the hidden fc units
    (shortcut projections and pooling branches not counted)."""
    if family == "mlp":
        return width
    if family == "alexnet":
        return 2 * width + scaled(384, width, family) + scaled(192, width, family)
    if family == "cudaconvnet":
        return 2 * width + 2 * scaled(64, width, family)
    if family == "inception":
        return width + sum(scaled(ch, width, family) for _, *chans in INCEPTION_PLAN for ch in chans)
    if family == "wrn":
        return max(1, width // 4) + 2 * WRN_BLOCKS * 7 * width
    if family == "resnet":
        return width + 2 * RESNET_BLOCKS * 7 * width
    raise KeyError(family)
