"""Training-speed benchmark: the packed step's latency, the ways of training one model, and
what they make of the paper profile.

    python -m deeptheory.bench                       # CUDA if available, else CPU
    python -m deeptheory.bench --device cpu --images 1024 --sizes 1 4 --widths 16 --steps 5 --workers 2

On CIFAR-shaped random data, batch 128, the 5-layer all-conv net, it prints (docs/PERFORMANCE.md
says how to read them):

1. the packed step's latency (ms per step, one step = one minibatch for every run of the
   pack) for packs of ``--sizes`` runs at ``--widths``, with the step's warm-up (compiling
   and capturing) and seconds per model-epoch (50,000 images) it implies;
2. seconds per model-epoch of one model trained the common way (a DataLoader over
   in-memory uint8 arrays with ToTensor and Normalize in ``--workers`` workers), of one
   model with the data resident on the device (the single-run engine), and, with
   ``--fakedata``, torchvision's FakeData loader (which mostly measures PIL);
3. the batched evaluation's cost per model and image;
4. the paper profile's time on this device, from its actual packs (``grid.plan`` of
   profile paper, of the config the loader merges from config/config.yaml and each
   ``--configfile``, as a build's): each pack steps until its longest run's epoch cap, at the measured
   latency of its bucket size as runs leave, packs one after another; beside it the
   throughput estimate (model-epochs times the packed rate at the largest pack).
"""

from __future__ import annotations

import argparse
import sys
import math
import subprocess
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import configcheck, grid, models
from .datasets import Dataset
from .engine import evaluate
from .packed import PackOptions, _build_step, _Member, _PackState, bucket, evaluate_many
from .spec import RunSpec

EPOCH = 50_000  # images in a CIFAR-10 epoch: the unit of "model-epoch"
BATCH = 128
ROOT = Path(__file__).resolve().parents[2]


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _peak_reset(device):
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()


def _peak(device) -> str:
    return f"{torch.cuda.max_memory_allocated() / 2**20:,.0f} MiB" if device.type == "cuda" else "n/a"


def cifar_arrays(n: int) -> dict:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 10, n)
    stats = np.full(3, 0.5, np.float32)
    return {"x_train": x, "y_train": y, "x_test": x[:1000], "y_test": y[:1000], "mean": stats, "std": stats / 2}


# ---------------------------------------------------------------------------------------
# One model at a time


class ArrayImages(torch.utils.data.Dataset):
    """CIFAR as it usually reaches a training loop: uint8 HWC images in memory, each turned
    into a normalised float tensor by torchvision transforms in the loader's workers."""

    def __init__(self, x_hwc: np.ndarray, y: np.ndarray, transform):
        self.x, self.y, self.transform = x_hwc, y, transform

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.transform(self.x[i]), int(self.y[i])


def _loader_train(dl, width: int, device) -> float:
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


def loader_loop(width: int, arrays: dict, device, workers: int) -> float:
    """The common way: in-memory uint8 arrays, ToTensor + Normalize per image in DataLoader
    workers, one model."""
    from torch.utils.data import DataLoader
    from torchvision import transforms

    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.25,) * 3)])
    ds = ArrayImages(np.ascontiguousarray(arrays["x_train"].transpose(0, 2, 3, 1)), arrays["y_train"], tf)
    dl = DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=workers, pin_memory=device.type == "cuda",
                    persistent_workers=False)
    return _loader_train(dl, width, device)


def fakedata_loop(width: int, images: int, device, workers: int) -> float:
    """torchvision FakeData: random PIL images made per item (measures PIL more than training)."""
    from torch.utils.data import DataLoader
    from torchvision import transforms
    from torchvision.datasets import FakeData

    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.25,) * 3)])
    ds = FakeData(size=images, image_size=(3, 32, 32), num_classes=10, transform=tf)
    dl = DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=workers, pin_memory=device.type == "cuda")
    return _loader_train(dl, width, device)


def resident_loop(width: int, data: Dataset, images: int) -> float:
    """One model at a time, data resident on the device (the engine's single-run path),
    with the one evaluation pass the engine makes at a run's cap."""
    device = data.device
    model = models.build("allconv5", width, data.input_shape, 10).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    perm = torch.randperm(len(data.y_train), device=device)[:images]
    _sync(device)
    t = time.perf_counter()
    for i in range(0, images, BATCH):
        idx = perm[i : i + BATCH]
        loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    evaluate(model, data.x_train[perm], data.y_train[perm])
    _sync(device)
    return time.perf_counter() - t


# ---------------------------------------------------------------------------------------
# The packed step


def bench_specs(model: str, width: int, size: int, n: int) -> list[RunSpec]:
    return [RunSpec("bench", model, width, n, seed=s, lr=0.01, momentum=0.9, batch_size=BATCH, max_epochs=10**6,
                    eval_every=10**6, stop_at_zero=False, n_test=128) for s in range(size)]


def step_latency(model: str, width: int, size: int, data: Dataset, steps: int,
                 options: PackOptions) -> tuple[float, float, PackOptions]:
    """Seconds per packed step of ``size`` runs (at their bucket size), after warm-up, and
    the warm-up's seconds (building, compiling, capturing and 3 first steps)."""
    device = data.device
    specs = bench_specs(model, width, size, len(data.y_train))
    options = options.resolve(device)
    template = models.build(model, width, data.input_shape, data.num_classes).to(device)
    names = [k for k, _ in template.named_parameters()]
    members = [_Member(s, data, None) for s in specs]
    _sync(device)
    t = time.perf_counter()
    step_fn, options = _build_step(template, names, BATCH, options, device)
    state = _PackState(members + [None] * (bucket(size) - size), names, len(data.y_train), device, step_fn, data,
                       options)
    for i, m in enumerate(members):
        state.start_epoch(i, m)
    for _ in range(3):
        state.step()
    _sync(device)
    warm = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(steps):
        state.step()
    _sync(device)
    per_step = (time.perf_counter() - t) / steps
    if state.graph is None and options.graph:
        options = replace(options, graph=False)
    if getattr(step_fn, "failed", False):
        options = replace(options, compile=False)
    return per_step, warm, options


def eval_cost(model: str, width: int, size: int, data: Dataset) -> float:
    """Seconds per model and image of the batched fp32 evaluation (training subsets)."""
    device = data.device
    template = models.build(model, width, data.input_shape, data.num_classes).to(device)
    params = {k: torch.stack([v.detach()] * size) for k, v in template.named_parameters()}
    n = len(data.y_train)
    idx = torch.stack([torch.randperm(n, device=device) for _ in range(size)])
    labels = data.y_train[idx]
    evaluate_many(template, params, data.x_train, labels[:, :BATCH], idx[:, :BATCH], [BATCH] * size)  # warm-up
    _sync(device)
    t = time.perf_counter()
    evaluate_many(template, params, data.x_train, labels, idx, [n] * size)
    _sync(device)
    return (time.perf_counter() - t) / (size * n)


# ---------------------------------------------------------------------------------------
# The paper profile


def _nearest(measured: dict, model: str, width: int, size: int, scale_width: bool = True) -> tuple[float, float]:
    """(step latency, warm-up) for a pack of ``model`` at ``width`` and bucket ``size``,
    from the measured grid: the model itself if measured, else allconv5; the smallest
    measured width at or above ``width`` (beyond the widest: scaled by the width ratio);
    the smallest measured size at or above ``size`` (beyond the largest: scaled by the
    size ratio). Every fallback rounds up; ``scale_width=False`` takes the widest measured
    width at or below ``width`` instead, unscaled (a latency-bound step: a lower bound)."""
    keys = [k for k in measured if k[0] == model] or [k for k in measured if k[0] == "allconv5"]
    widths = sorted({k[1] for k in keys})
    if scale_width:
        w = next((x for x in widths if x >= width), widths[-1])
        wscale = max(1.0, width / w)
    else:  # the widest measured width at or below it (a wider net's step costs at least that)
        w, wscale = next((x for x in reversed(widths) if x <= width), widths[0]), 1.0
    sizes = sorted({k[2] for k in keys if k[1] == w})
    s = next((x for x in sizes if x >= size), sizes[-1])
    sscale = max(1.0, size / s)
    lat, warm = measured[(keys[0][0], w, s)]
    return lat * wscale * sscale, warm


def paper_plan(configfiles=()):
    """The paper profile's plan and settings, from the config a build with ``configfiles``
    (--configfile) sees: merged and validated by the one loader, the profile set to paper."""
    cfg = configcheck.load_config(configfiles, overrides={"profile": "paper"})
    return grid.plan(cfg), cfg["profiles"]["paper"]


def paper_estimate(measured: dict, eval_s: float | None, configfiles=(), min_bucket: int = 1,
                   scale_width: bool = True, targets=None) -> dict:
    """The paper profile on one device, every run at its epoch cap (an upper bound: runs
    that fit stop early): each pack steps while its runs are active, at the latency of its
    bucket size; packs run one after another (one GPU job at a time). With ``targets``, only
    the packs (and runs) a build of those targets trains."""
    plan, _ = paper_plan(configfiles)
    packs = plan.packs
    if targets:
        keep = {s.run_id for t in targets for s in plan.runs_of(t)}
        packs = {k: [r for r in ids if r in keep] for k, ids in packs.items() if keep & set(ids)}
    out = {"runs": 0, "packs": 0, "steps": 0, "train_s": 0.0, "warm_s": 0.0, "eval_s": 0.0, "model_epochs": 0.0,
           "throughput_s": 0.0, "longest": ("", 0.0), "pack_s": [], "pack_warm_s": []}
    largest = max(k[2] for k in measured)
    per_epoch = math.ceil(EPOCH / BATCH)
    for key, run_ids in packs.items():
        specs = [plan.specs[r] for r in run_ids]
        model, width = specs[0].model, specs[0].width
        steps = sorted(s.max_epochs * -(-s.N // s.batch_size) for s in specs)
        done, seconds, shapes = 0, 0.0, set()
        for k, end in enumerate(steps):  # between the k-th and the next run's end, len(steps) - k are active
            size = max(min_bucket, bucket(len(steps) - k))
            lat, warm = _nearest(measured, model, width, size, scale_width)
            seconds += (end - done) * lat
            if end > done:
                shapes.add((size, warm))
            done = end
        warm_s = sum(w for _, w in shapes)
        out["runs"] += len(specs)
        out["packs"] += 1
        out["steps"] += steps[-1]
        out["train_s"] += seconds
        out["warm_s"] += warm_s
        model_epochs = sum(s.max_epochs * s.N / EPOCH for s in specs)
        out["model_epochs"] += model_epochs
        # throughput view: every model-epoch at the packed rate of the largest measured pack
        out["throughput_s"] += (model_epochs * _nearest(measured, model, width, largest, scale_width)[0] * per_epoch
                                / largest)
        evals = 0.0
        if eval_s is not None:
            n_test = specs[0].n_test or 10_000
            evals = sum((s.max_epochs // s.eval_every + 1) * (s.N + n_test) for s in specs) * eval_s
            out["eval_s"] += evals
        out["pack_s"].append(seconds + evals)      # the pack's own sequential time on the device
        out["pack_warm_s"].append(warm_s)
        if seconds > out["longest"][1]:
            out["longest"] = (f"{key} ({len(specs)} runs, {steps[-1]:,} steps)", seconds)
    return out


# ---------------------------------------------------------------------------------------
# Several packs at once (deeptheory.gpu: packs_per_gpu), and the estimate calibrated


def concurrent_wall(pack_s: list[float], overhead_s: list[float], k: int, floor_s: float = 0.0) -> float:
    """Wall time of packs run ``k`` at a time: pack i steps for ``pack_s[i]`` once it has spent
    ``overhead_s[i]`` starting (process, data, compile: host work, the device idle). At
    least the longest pack with its start; otherwise the device's share, the larger of the
    packs' time spread over the k slots and ``floor_s`` (the device's own bound: the sum of
    the packs' times on a time-sliced GPU, the total work at the largest pack's rate with
    MPS, 0 where each slot is its own core), plus the starts spread over the k slots."""
    longest = max((p + o for p, o in zip(pack_s, overhead_s)), default=0.0)
    return max(longest, max(sum(pack_s) / k, floor_s) + sum(overhead_s) / k)


def concurrency_rows(est: dict, overhead_s: float, ks=(1, 2, 4, 8)) -> list[tuple[int, float, float]]:
    """(k, wall on a time-sliced GPU, wall with concurrent kernels (MPS)) of the paper
    estimate ``est`` with ``overhead_s`` per pack job besides its warm-ups."""
    over = [overhead_s + w for w in est["pack_warm_s"]]
    busy = sum(est["pack_s"])
    mps = est["throughput_s"] + est["eval_s"]
    return [(k, concurrent_wall(est["pack_s"], over, k, busy), concurrent_wall(est["pack_s"], over, k, mps))
            for k in ks]


# The issue-20 measurements on one H200 (an estimate built on them, not a measurement of the
# paper profile): the packed step of allconv5 (compile + CUDA graph + bf16) at widths 16 and
# 64 in packs of 1, 16 and 256 runs (`python -m deeptheory.bench` at 566995d), the start of
# a pack job (process, data load, compile), and one whole 3-run N = 10,000 pack job.
H200 = {"step_s": {16: {1: 0.285e-3, 16: 0.942e-3, 256: 6.92e-3}, 64: {1: 0.355e-3, 16: 1.956e-3, 256: 22.5e-3}},
        "overhead_s": (15.0, 20.0), "pack_job_s": 45.0, "pack": dict(runs=3, N=10_000)}


def interpolated(points: dict[int, float]) -> dict[int, float]:
    """Step latency at every power-of-two bucket between measured ones, geometric in the
    bucket size (0.29 ms at 1 and 0.94 ms at 16 give 0.52 ms at 4)."""
    sizes = sorted(points)
    out = dict(points)
    for a, b in zip(sizes, sizes[1:]):
        size = a * 2
        while size < b:
            t = math.log(size / a) / math.log(b / a)
            out[size] = points[a] * (points[b] / points[a]) ** t
            size *= 2
    return out


def h200_calibration(configfiles=()) -> dict:
    """The latency table of the H200 numbers and the evaluation cost per run-image that makes
    the model reproduce the measured 3-run N = 10,000 pack job (45 s) at the mid overhead:
    one data point, so the model is fitted to it, not checked against it."""
    measured = {("allconv5", w, b): (lat, 0.0) for w, points in H200["step_s"].items()
                for b, lat in interpolated(points).items()}
    plan, _ = paper_plan(configfiles)
    runs, n = H200["pack"]["runs"], H200["pack"]["N"]
    key, ids = next((k, r) for k, r in plan.packs.items() if len(r) == runs and plan.specs[r[0]].N == n
                    and plan.specs[r[0]].model == "allconv5")
    specs = [plan.specs[r] for r in ids]
    steps = max(s.max_epochs * -(-s.N // s.batch_size) for s in specs)
    train = steps * _nearest(measured, "allconv5", 16, bucket(runs))[0]
    images = sum((s.max_epochs // s.eval_every + 1) * (s.N + (s.n_test or 10_000)) for s in specs)
    overhead = sum(H200["overhead_s"]) / 2
    eval_s = max(0.0, H200["pack_job_s"] - overhead - train) / images
    return {"measured": measured, "eval_s": eval_s, "pack": key, "steps": steps, "train_s": train,
            "overhead_s": overhead, "eval_images": images}


def build_jobs(build: Path) -> list[dict]:
    """Each single-run training job of a finished build (rule train): its spec, steps taken
    (last epoch x batches per epoch), evaluations (metrics rows) and their images, its
    in-process time (the last row's wall_s), its job time (Snakemake's benchmark file) and
    when it ended (provenance)."""
    import csv
    import json

    datasets = {}  # what the build's own config files record (read as the loader reads a file)
    for name in ("config.yaml", "offline.yaml"):
        path = build / "config" / name
        if path.exists():
            datasets = configcheck.merge(datasets, configcheck.read_yaml(path).get("datasets") or {})
    jobs = []
    for tsv in sorted((build / "benchmarks" / "train").glob("*/*.tsv")):
        run_id = f"{tsv.parent.name}/{tsv.stem}"
        folder = build / "results" / "runs" / run_id
        if tsv.stem.endswith((".group", ".pack", ".from_pack")) or not (folder / "provenance.json").exists():
            continue  # a group's, a pack job's or run_from_pack's benchmark
        prov = json.loads((folder / "provenance.json").read_text())
        spec = RunSpec.from_dict(prov["config"]["spec"])
        with open(folder / "metrics.csv") as f:
            rows = list(csv.DictReader(f))
        fmt = (datasets.get(spec.dataset) or {}).get("format")
        n_test = spec.n_test or 10_000
        jobs.append({"spec": spec, "format": fmt, "steps": int(rows[-1]["epoch"]) * -(-spec.N // spec.batch_size),
                     "eval_images": len(rows) * (spec.N + n_test), "train_s": float(rows[-1]["wall_s"]),
                     "job_s": float(tsv.read_text().splitlines()[1].split("\t")[0]),
                     "end": datetime.fromisoformat(prov["created"]).timestamp()})
    return jobs


def _features(job: dict) -> list[float]:
    """A job's in-process time = c0 steps + c1 (steps x batch x activations per image) +
    c2 (evaluated images x activations per image): a step's fixed cost, its work, and the
    evaluations' work (activation counts from deeptheory.gpu.model_counts)."""
    from .formats import IMAGE_SHAPE
    from .gpu import model_counts

    s = job["spec"]
    _, acts, _ = model_counts(s.model, s.width, IMAGE_SHAPE.get(job["format"], (3, 32, 32)), 10)
    return [job["steps"], job["steps"] * s.batch_size * acts / 1e6, job["eval_images"] * acts / 1e6]


def cpu_calibration(build: Path, k: int) -> dict:
    """The model calibrated on a finished build's single-run jobs: the 3 coefficients of
    :func:`_features` by least squares and the per-job start (median of job time minus
    in-process time); each job's time predicted leaving that job out of the fit; the
    build's training span (first job's start to last job's end) against
    :func:`concurrent_wall` of the predicted jobs at ``k`` at once (one core each: no floor)."""
    jobs = build_jobs(build)
    X = np.array([_features(j) for j in jobs])
    y = np.array([j["train_s"] for j in jobs])
    start = np.array([j["job_s"] - j["train_s"] for j in jobs])
    coef = np.linalg.lstsq(X, y, rcond=None)[0]
    loo = []
    for i in range(len(jobs)):
        keep = np.arange(len(jobs)) != i
        c = np.linalg.lstsq(X[keep], y[keep], rcond=None)[0]
        loo.append(float(X[i] @ c + np.median(start[keep])))
    actual = np.array([j["job_s"] for j in jobs])
    rel = np.abs(np.array(loo) - actual) / actual
    span = max(j["end"] for j in jobs) - min(j["end"] - j["job_s"] for j in jobs)
    overhead = float(np.median(start))
    predicted = concurrent_wall(list(X @ coef), [overhead] * len(jobs), k)
    return {"jobs": len(jobs), "coef": coef.tolist(), "overhead_s": overhead, "median_rel_err": float(np.median(rel)),
            "p90_rel_err": float(np.quantile(rel, 0.9)), "sum_pred_s": float(sum(loo)), "sum_job_s": float(actual.sum()),
            "span_s": span, "span_pred_s": predicted, "k": k}


# ---------------------------------------------------------------------------------------


def _commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except Exception:  # noqa: BLE001
        return "unknown"


def _switch(value: str | None) -> bool | None:
    return None if value is None else value == "on"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:,.1f} min"


def print_estimate(est: dict, overheads: tuple, ks) -> None:
    """The paper estimate at each k packs at once, for each per-pack start in ``overheads``."""
    print(f"  {'packs at once':<14}" + "".join(f"{f'time-sliced, {o:g} s start':>26}{f'MPS, {o:g} s start':>20}"
                                            for o in overheads))
    rows = {o: concurrency_rows(est, o, ks) for o in overheads}
    for i, k in enumerate(ks):
        print(f"  {k:<14}" + "".join(f"{_minutes(rows[o][i][1]):>26}{_minutes(rows[o][i][2]):>20}" for o in overheads))
    print(f"  (sequential device time {_minutes(sum(est['pack_s']))}: steps {_minutes(est['train_s'])}, evaluations "
          f"{_minutes(est['eval_s'])}; longest pack {est['longest'][0]}: {_minutes(est['longest'][1])}; "
          f"all the work at the largest measured pack's rate {_minutes(est['throughput_s'] + est['eval_s'])})")


def add_configfile(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--configfile", action="append", default=[], nargs="+", type=Path,
                    help="config files merged over config/config.yaml, as given to snakemake (profile: paper)")


def configfiles(args) -> list[Path]:
    return [f for group in args.configfile for f in group]


def estimate_main(argv) -> None:
    """python -m deeptheory.bench estimate: the paper profile's wall with k packs at once,
    on one H200 from the issue-20 measurements, and the same model calibrated on a finished
    CPU build's single-run jobs (its error stated)."""
    ap = argparse.ArgumentParser(prog="deeptheory bench estimate", description=estimate_main.__doc__.split("\n")[0])
    add_configfile(ap)
    ap.add_argument("--build", type=Path, default=None,
                    help="a finished build of single-run jobs (pack: false, e.g. the quick profile) to calibrate on")
    ap.add_argument("--cores", type=int, default=2, help="training jobs at once in that build (its --cores)")
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4, 8], help="packs at once to estimate")
    ap.add_argument("--targets", nargs="+", default=None,
                    help="only the packs a build of these paper targets trains (a part of the profile)")
    args = ap.parse_args(argv)
    print(f"deeptheory.bench estimate  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  commit {_commit()}")
    cal = h200_calibration(configfiles(args))
    lo, hi = H200["overhead_s"]
    steps = "; ".join(f"width {w}: " + ", ".join(f"{t * 1e3:.3g} ms at {b}" for b, t in points.items())
                      for w, points in H200["step_s"].items())
    print(f"\nPaper profile on one H200: an ESTIMATE from issue 20's measurements (packed step, runs in the pack: "
          f"{steps}; geometric between; {lo:g}-{hi:g} s start per pack job; one 3-run N = 10,000 pack job in "
          f"{H200['pack_job_s']:g} s)")
    print(f"  calibration: {cal['pack']} ({cal['steps']:,} steps, {_minutes(cal['train_s'])} of steps at "
          f"{cal['overhead_s']:g} s start) leaves its evaluations {cal['eval_s'] * 1e6:.3f} us per run-image; "
          f"one pack fixes it, nothing checks it")
    widest = max(H200["step_s"])
    for scale, label in ((True, f"a net costs the next measured width up, one wider than {widest} its width ratio "
                                f"(the bench's rule; an upper bound)"),
                         (False, "a net costs the next measured width down (latency-bound; a lower bound)")):
        est = paper_estimate(cal["measured"], cal["eval_s"], configfiles(args), scale_width=scale, targets=args.targets)
        part = f" of {', '.join(args.targets)}" if args.targets else ""
        print(f"\n  {est['runs']} runs{part} in {est['packs']} packs, every run at its epoch cap; {label}:")
        print_estimate(est, (lo, hi), args.ks)
    print("  time-sliced: one GPU without MPS runs one process's kernels at a time (the packs' device times add);"
          "\n  MPS: kernels of several processes at once (the work at the largest measured pack's rate bounds it)")
    if args.build is not None:
        cpu = cpu_calibration(args.build, args.cores)
        c0, c1, c2 = cpu["coef"]
        print(f"\nThe same model calibrated on {args.build} ({cpu['jobs']} single-run jobs on this CPU): "
              f"a job = {cpu['overhead_s']:.2f} s start + steps x ({c0 * 1e3:.3f} ms + {c1 * 1e3:.3f} ms per million "
              f"batch activations) + {c2 * 1e3:.3f} ms per million evaluated activations")
        print(f"  each job left out of its own fit: median error {cpu['median_rel_err']:.1%}, 90th percentile "
              f"{cpu['p90_rel_err']:.1%}; all jobs {_minutes(cpu['sum_pred_s'])} predicted, "
              f"{_minutes(cpu['sum_job_s'])} measured")
        err = cpu["span_pred_s"] / cpu["span_s"] - 1
        print(f"  training span at {cpu['k']} jobs at once: {_minutes(cpu['span_pred_s'])} predicted, "
              f"{_minutes(cpu['span_s'])} measured ({err:+.0%}; the build's other jobs shared the cores)")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["estimate"]:
        return estimate_main(argv[1:])
    ap = argparse.ArgumentParser(prog="deeptheory bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--images", type=int, default=None,
                    help="training images per run (default 50,000 on CUDA, 2,048 on CPU)")
    ap.add_argument("--sizes", type=int, nargs="+", default=None,
                    help="pack sizes whose step latency to measure (default 1 4 16 64 256 on CUDA, 1 4 16 on CPU)")
    ap.add_argument("--widths", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--models", nargs="+", default=["allconv5"], choices=models.FAMILIES,
                    help="families to measure; packs of others are estimated at allconv5's latency")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per pack (default 50 on CUDA, 5 on CPU)")
    ap.add_argument("--workers", type=int, default=8, help="DataLoader workers")
    ap.add_argument("--compile", choices=["on", "off"], default=None, help="default: on for CUDA")
    ap.add_argument("--graph", choices=["on", "off"], default=None, help="CUDA graph; default: on for CUDA")
    ap.add_argument("--amp", choices=["on", "off"], default=None, help="bf16 autocast; default: on for CUDA")
    ap.add_argument("--min-bucket", type=int, default=None,
                    help="smallest static pack size (PackOptions.min_bucket) in the paper estimate")
    ap.add_argument("--no-loaders", action="store_true", help="skip the one-model-at-a-time rows")
    ap.add_argument("--fakedata", action="store_true", help="also time torchvision FakeData (PIL) as a loader")
    add_configfile(ap)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    images = args.images or (EPOCH if cuda else 2048)
    sizes = args.sizes or ([1, 4, 16, 64, 256] if cuda else [1, 4, 16])
    steps = args.steps or (50 if cuda else 5)
    options = PackOptions(compile=_switch(args.compile), graph=_switch(args.graph), amp=_switch(args.amp),
                          min_bucket=args.min_bucket)
    arrays = cifar_arrays(images)
    data = Dataset("bench", arrays, device)
    name = torch.cuda.get_device_name(device) if cuda else f"cpu ({torch.get_num_threads()} threads)"
    print(f"deeptheory.bench  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  commit {_commit()}")
    print(f"device {name}; torch {torch.__version__}; {images:,} images per run; batch {BATCH}; "
          f"options {options.resolve(device)}")

    print("\n1. Packed step latency (one step: one minibatch of 128 for every run in the pack)")
    print(f"{'model':<10}{'width':>6}{'runs':>6}{'bucket':>7}{'ms / step':>11}{'warm-up s':>11}"
          f"{'s / model-epoch':>17}{'peak memory':>14}  options")
    measured, rates = {}, {}
    spe = math.ceil(EPOCH / BATCH)  # steps per model-epoch
    for model in args.models:
        for width in args.widths:
            for size in sizes:
                _peak_reset(device)
                lat, warm, used = step_latency(model, width, size, data, steps, options)
                measured[(model, width, bucket(size))] = (lat, warm)
                per = lat * spe / size
                if model == "allconv5":
                    rates[width] = per
                print(f"{model:<10}{width:>6}{size:>6}{bucket(size):>7}{lat * 1e3:>11.3f}{warm:>11.1f}{per:>17.4f}"
                      f"{_peak(device):>14}  compile={used.compile} graph={used.graph} amp={used.amp}")

    if not args.no_loaders:
        print(f"\n2. One model at a time, allconv5 (s / model-epoch of {EPOCH:,} images, from {images:,})")
        print(f"{'way':<44}{'width':>6}{'s / model-epoch':>17}{'images / s':>12}{'vs packed':>11}")
        for width in args.widths:
            ways = [(f"DataLoader, uint8 arrays, ToTensor+Normalize, {args.workers} w",
                     lambda w=width: loader_loop(w, arrays, device, args.workers)),
                    ("resident on the device (single-run engine)", lambda w=width: resident_loop(w, data, images))]
            if args.fakedata:
                ways.append((f"DataLoader, FakeData (PIL), {args.workers} w",
                             lambda w=width: fakedata_loop(w, images, device, args.workers)))
            for way, fn in ways:
                try:
                    seconds = fn()
                except ImportError as err:
                    print(f"{way:<44}{width:>6}   skipped: {err}")
                    continue
                per = seconds * EPOCH / images
                packed = rates.get(width)
                ratio = f"{per / packed:>10.1f}x" if packed else f"{'':>11}"
                print(f"{way:<44}{width:>6}{per:>17.4f}{images / seconds:>12,.0f}{ratio}")
        print(f"  (vs packed: this way's time / the packed step's at {bucket(max(sizes))} runs)")

    eval_size = min(16, max(sizes))
    eval_s = eval_cost("allconv5", max(args.widths), eval_size, data)
    print(f"\n3. Batched fp32 evaluation, {eval_size} allconv5 runs at width {max(args.widths)}: "
          f"{eval_s * 1e6:.3f} us per run and image ({eval_s * 60_000:.4f} s per run for 50,000 + 10,000 images)")

    est = paper_estimate(measured, eval_s, configfiles(args), options.resolve(device).min_bucket)
    hours = lambda s: f"{s / 3600:.2f} h ({s / 60:,.1f} min)"
    print(f"\n4. Paper profile on this device: {est['runs']} runs in {est['packs']} packs, one GPU job at a time, "
          "every run at its epoch cap")
    print("  latency estimate (sequential steps x measured latency at each bucket size):")
    print(f"    training steps  {hours(est['train_s'])}   [{est['steps']:,} sequential steps]")
    print(f"    warm-ups        {hours(est['warm_s'])}   (compile / capture per pack and bucket size)")
    print(f"    evaluations     {hours(est['eval_s'])}   (every eval_every epochs, training subset + test set)")
    print(f"    total           {hours(est['train_s'] + est['warm_s'] + est['eval_s'])}")
    print(f"    longest pack    {est['longest'][0]}: {hours(est['longest'][1])}")
    print(f"  throughput estimate ({est['model_epochs']:,.0f} model-epochs, each at the s / model-epoch of "
          f"the largest measured pack, {max(sizes)} runs): {hours(est['throughput_s'])}")
    widths = sorted({k[1] for k in measured})
    print(f"  (packs at unmeasured widths use the next measured width up, {widths}, or scale from the widest;"
          f" unmeasured models use allconv5's latency)")


if __name__ == "__main__":
    main()
