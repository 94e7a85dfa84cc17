"""Generated data in the official archive formats, small enough for a fast test."""

from __future__ import annotations

import copy
import functools
import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from deeptheory import configcheck, formats

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def checkpoint_every_epoch(monkeypatch):
    """Tests kill runs after a given epoch and resume them, so every run (in this process and
    in the builds it starts) checkpoints after every epoch; by default checkpoints are spaced
    in seconds (run.checkpoints.interval_s), which a test's small runs never reach. The
    spacing has its own test (test_engine)."""
    monkeypatch.setenv("DEEPTHEORY_CHECKPOINT_S", "0")


def checkout_config(*configfiles: str, **overrides) -> dict:
    """The config a build of this checkout sees with config/<each of ``configfiles``> as
    --configfile and ``overrides`` as --config: the one loader's (merged, validated, the
    schema's defaults filled in); a copy the test may change."""
    return copy.deepcopy(_loaded(configfiles, tuple(sorted(overrides.items()))))


@functools.lru_cache(maxsize=None)
def _loaded(configfiles: tuple, overrides: tuple) -> dict:
    return configcheck.load_config([ROOT / "config" / f for f in configfiles], overrides=dict(overrides))


def config_claims() -> dict:
    """The claim thresholds of the checkout's config: tests check the claims as they run."""
    return checkout_config()["claims"]


def train_settings(**kw) -> dict:
    """Training fields a test spec spells out (no RunSpec defaults stand in for config)."""
    return {"lr": 0.1, "momentum": 0.9, "batch_size": 32, "max_epochs": 8, **kw}

IDX_NAMES = {"x_train": "train-images-idx3-ubyte.gz", "y_train": "train-labels-idx1-ubyte.gz",
             "x_test": "t10k-images-idx3-ubyte.gz", "y_test": "t10k-labels-idx1-ubyte.gz"}


def learnable_images(n: int, shape, classes: int = 10, seed: int = 0):
    """Each class lights its own band of rows, under noise: a conv net fits it in a few epochs."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    c, h, w = shape
    x = rng.integers(0, 60, (n, c, h, w))
    band = h // classes
    for i, k in enumerate(labels):
        x[i, :, k * band : (k + 1) * band, :] += 150
    return x.astype(np.uint8), labels.astype(np.int64)


def md5(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def write_idx_set(folder: Path, n_train=200, n_test=100, size=28, seed=0) -> dict:
    """Write the four MNIST-format .gz files; return their config entry {file: {md5, content_md5}}."""
    folder.mkdir(parents=True, exist_ok=True)
    x_tr, y_tr = learnable_images(n_train, (1, size, size), seed=seed)
    x_te, y_te = learnable_images(n_test, (1, size, size), seed=seed + 1)
    arrays = {"x_train": x_tr[:, 0], "y_train": y_tr, "x_test": x_te[:, 0], "y_test": y_te}
    files = {}
    for key, name in IDX_NAMES.items():
        raw = formats.encode_idx(arrays[key])
        (folder / name).write_bytes(gzip.compress(raw, mtime=0))
        files[name] = {"md5": md5(folder / name), "content_md5": hashlib.md5(raw).hexdigest()}
    return files


def write_cifar_set(folder: Path, n_train=100, n_test=50, seed=0) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    x_tr, y_tr = learnable_images(n_train, (3, 32, 32), seed=seed)
    x_te, y_te = learnable_images(n_test, (3, 32, 32), seed=seed + 1)
    path = folder / "cifar-10-python.tar.gz"
    formats.write_cifar10_tarball(path, x_tr, y_tr, x_te, y_te)
    return {path.name: {"md5": md5(path)}}


@pytest.fixture(scope="session")
def tiny():
    """A learnable 20x20 data set resident on the CPU, for engine tests."""
    return tiny_dataset()


def tiny_dataset():
    """The ``tiny`` fixture's data set (also for a test's worker processes)."""
    from deeptheory.datasets import Dataset

    x_tr, y_tr = learnable_images(300, (1, 20, 20), seed=0)
    x_te, y_te = learnable_images(100, (1, 20, 20), seed=1)
    x = x_tr.astype(np.float64) / 255
    return Dataset("tiny", {"x_train": x_tr, "y_train": y_tr, "x_test": x_te, "y_test": y_te,
                            "mean": x.mean(axis=(0, 2, 3)).astype(np.float32),
                            "std": x.std(axis=(0, 2, 3)).astype(np.float32)})


@pytest.fixture
def idx_dir(tmp_path):
    folder = tmp_path / "idx-source"
    return folder, write_idx_set(folder)


def make_sources(folder: Path) -> Path:
    """Generated archives in the official formats, with their config entries beside them."""
    sources = folder / "sources"
    sources.mkdir(parents=True)
    (sources / "fmnist.json").write_text(json.dumps(write_idx_set(sources / "fmnist", n_train=120, n_test=60)))
    (sources / "cifar.json").write_text(json.dumps(write_cifar_set(sources / "cifar", n_train=120, n_test=60)))
    return sources


def snakemake(workdir: Path, config: dict, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The workflow on ``workdir`` with ``config``, its jobs importing this checkout's library.
    ``args`` come before --configfile, which would read a target after it as a config file."""
    cfg = workdir / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    env = dict(env or os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT / "src"), env.get("PYTHONPATH", "")] if p)
    return subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
                           "--directory", str(workdir), *args, "--configfile", str(cfg)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def held(row):
    """A claim row's verdict as a test reads it: True held, False refuted, None inconclusive;
    of a table of claim rows, whether each held."""
    if isinstance(row, pd.DataFrame):
        return row["verdict"].eq("held")
    return {"held": True, "refuted": False, "inconclusive": None}[row["verdict"]]
