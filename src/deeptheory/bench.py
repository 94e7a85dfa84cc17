"""Training-speed benchmark: per-model DataLoader loop, per-model resident loop, packed engine.

    python -m deeptheory.bench                       # CUDA if available, else CPU
    python -m deeptheory.bench --device cpu --images 2048 --pack 8

In one process, on CIFAR-shaped random data and the 5-layer all-conv net (batch 128), it
prints seconds per model-epoch of 50,000 images, images per second and peak GPU memory for
each way at widths 16 and 64, the ratios between them, and an estimate of the paper
profile's training time from its grid and the measured rates.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from . import models
from .datasets import Dataset
from .engine import evaluate
from .packed import train_packed
from .spec import RunSpec

EPOCH = 50_000  # images in a CIFAR-10 epoch: the unit of "model-epoch"


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _peak_reset(device):
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()


def _peak(device) -> str:
    return f"{torch.cuda.max_memory_allocated() / 2**20:,.0f} MiB" if device.type == "cuda" else "n/a (cpu)"


def fake_cifar(n: int, device) -> Dataset:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 10, n)
    stats = np.full(3, 0.5, np.float32)
    return Dataset("bench", {"x_train": x, "y_train": y, "x_test": x[:1000], "y_test": y[:1000],
                             "mean": stats, "std": stats / 2}, device)


def loader_loop(width: int, data: Dataset, images: int, workers: int) -> float:
    """The common way: a torchvision Dataset with transforms and a DataLoader, one model."""
    from torch.utils.data import DataLoader
    from torchvision import transforms
    from torchvision.datasets import FakeData

    device = data.device
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.25,) * 3)])
    ds = FakeData(size=images, image_size=(3, 32, 32), num_classes=10, transform=tf)
    dl = DataLoader(ds, batch_size=128, shuffle=True, num_workers=workers, pin_memory=device.type == "cuda")
    model = models.build("allconv5", width, (3, 32, 32), 10).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    _sync(device)
    t = time.perf_counter()
    for x, y in dl:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(device)
    return time.perf_counter() - t


def resident_loop(width: int, data: Dataset, images: int) -> float:
    """One model at a time, data resident on the device (the engine's single-run path),
    with the one evaluation pass the engine makes at a run's cap, as the packed way has."""
    device = data.device
    model = models.build("allconv5", width, data.input_shape, 10).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    perm = torch.randperm(len(data.y_train), device=device)[:images]
    _sync(device)
    t = time.perf_counter()
    for i in range(0, images, 128):
        idx = perm[i : i + 128]
        loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    evaluate(model, data.x_train[perm], data.y_train[perm])
    evaluate(model, data.x_test[:128], data.y_test[:128])
    _sync(device)
    return time.perf_counter() - t


def packed_engine(width: int, data: Dataset, images: int, pack: int) -> float:
    """``pack`` models of one width, one epoch of ``images`` each, trained in one pass."""
    specs = [RunSpec("bench", "allconv5", width, images, seed=s, lr=0.01, max_epochs=1, eval_every=1000,
                     stop_at_zero=False, n_test=128) for s in range(pack)]
    _sync(data.device)
    t = time.perf_counter()
    train_packed(specs, data)
    _sync(data.device)
    # The engine also evaluates each run once at its cap; keep that in, it is part of the cost.
    return (time.perf_counter() - t) / pack


def paper_estimate(rates: dict[int, float], config: Path) -> tuple[float, int]:
    """Upper bound of the paper profile's GPU time: every run at its epoch cap, at the
    measured rate of the nearest benchmarked width (cnn5 runs at allconv5's rate)."""
    cfg = yaml.safe_load(config.read_text())
    paper = cfg["profiles"]["paper"]
    total, runs = 0.0, 0
    widths = sorted(rates)
    for t in paper["targets"].values():
        for w in t["widths"]:
            rate = rates[min(widths, key=lambda b: abs(np.log(b / w)))]
            for n in t["N"]:
                runs += len(paper["seeds"])
                total += len(paper["seeds"]) * paper["train"]["max_epochs"] * n / EPOCH * rate
    return total, runs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--images", type=int, default=None, help="images per model and way (default 50,000 on CUDA, 2,048 on CPU)")
    ap.add_argument("--pack", type=int, default=None, help="models in the packed pass (default 256 on CUDA, 8 on CPU)")
    ap.add_argument("--widths", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--config", type=Path, default=Path(__file__).resolve().parents[2] / "config" / "config.yaml")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    images = args.images or (EPOCH if cuda else 2048)
    pack = args.pack or (256 if cuda else 8)
    data = fake_cifar(images, device)
    name = torch.cuda.get_device_name(device) if cuda else "cpu"
    print(f"device {name}; torch {torch.__version__}; {images} images per model; pack of {pack}; batch 128")
    print(f"{'way':<26}{'width':>6}{'s / model-epoch':>18}{'images / s':>14}{'peak memory':>16}")
    rates = {}
    for width in args.widths:
        per = {}
        ways = [("per-model DataLoader", lambda: loader_loop(width, data, images, args.workers)),
                ("per-model resident", lambda: resident_loop(width, data, images)),
                ("packed engine", lambda: packed_engine(width, data, images, pack))]
        for way, fn in ways:
            _peak_reset(device)
            try:
                seconds = fn()
            except ImportError as err:
                print(f"{way:<26}{width:>6}   skipped: {err}")
                continue
            per[way] = seconds * EPOCH / images
            print(f"{way:<26}{width:>6}{per[way]:>18.4f}{images / seconds:>14,.0f}{_peak(device):>16}")
        for a, b in [("per-model DataLoader", "packed engine"), ("per-model resident", "packed engine"),
                     ("per-model DataLoader", "per-model resident")]:
            if a in per and b in per:
                print(f"  width {width}: {a} / {b} = {per[a] / per[b]:.1f}x")
        rates[width] = per.get("packed engine", np.nan)
    total, runs = paper_estimate(rates, args.config)
    print(f"paper profile: {runs} runs; at most {total / 3600:.2f} h of training on this device "
          f"(every run at its epoch cap, packed rates)")


if __name__ == "__main__":
    main()
