"""Several training jobs on one GPU (deeptheory.gpu): packs trained at once keep their
numbers, each job's memory estimate, the local limits, and the compile cache."""

import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from deeptheory import gpu, packed
from deeptheory.run import evaluation
from deeptheory.packed import PackOptions, _Member, _PackState, train_packed

from conftest import tiny_dataset
from test_packed import MIXED, assert_matches_single_runs, spec

ROOT = Path(__file__).resolve().parents[1]
# Two packs of two architectures (pack keys): what two pack jobs on one GPU train.
PACKS = [MIXED, [spec(width=2, seed=3), spec(width=2, N=48, seed=4, lr=0.05, labels="random", label_seed=2)]]


def _train(i: int, out) -> None:
    """A worker: train pack ``i`` on one thread, as a pack job does; report its span."""
    torch.set_num_threads(1)
    start = time.time()
    results = train_packed(PACKS[i], tiny_dataset())
    out.put((i, start, time.time(), [_numbers(r) for r in results]))


def _numbers(result):
    """What a run writes, less its wall times: metrics rows and weights."""
    rows = [{k: v for k, v in row.items() if k != "wall_s"} for row in result.rows]
    return rows, {k: v.numpy() for k, v in result.state_dict.items()}


def test_packs_trained_at_once_equal_each_trained_alone_and_the_single_run_path(tiny):
    """Two pack jobs on one device at the same time (two processes): each run's metrics and
    weights are those of its pack trained alone, bit for bit, and those of the single-run
    path to the packed path's tolerance."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    workers = [ctx.Process(target=_train, args=(i, out)) for i in range(len(PACKS))]
    for w in workers:
        w.start()
    got = [out.get(timeout=300) for _ in workers]
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    spans = sorted((start, end) for _, start, end, _ in got)
    assert spans[1][0] < spans[0][1], f"the two packs did not train at the same time: {spans}"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for i, _, _, concurrent in sorted(got, key=lambda g: g[0]):
            alone = train_packed(PACKS[i], tiny)
            for (rows, weights), result in zip(concurrent, alone):
                ref_rows, ref_weights = _numbers(result)
                np.testing.assert_equal(rows, ref_rows)   # exact; NaN (no value yet) equals NaN
                for k in ref_weights:
                    np.testing.assert_array_equal(weights[k], ref_weights[k])
            assert_matches_single_runs(PACKS[i], alone, tiny)
    finally:
        torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------
# Memory estimate


def test_the_dag_side_copies_of_the_packed_constants_agree():
    assert gpu.EVAL_CHUNK == evaluation.EVAL_CHUNK and gpu.EVAL_VALUES == packed.EVAL_VALUES
    assert [gpu.bucket(n) for n in range(1, 40)] == [packed.bucket(n) for n in range(1, 40)]


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


@pytest.mark.parametrize("width", [2, 8])
def test_the_memory_estimate_holds_the_packs_tensors(tiny, width):
    """The estimate is at least what a pack holds in tensors: its stacked state (parameters,
    momentum, orders, labels) and the resident data set, for the tiny data (format unknown
    to the estimate: it assumes CIFAR's images and 60,000 of them, an upper bound)."""
    specs = [spec(width=width, seed=s) for s in range(3)]
    members = [_Member(s, tiny, None) for s in specs]
    names = list(members[0].params)
    opts = PackOptions().resolve(tiny.device)
    state = _PackState(members + [None], names, 64, tiny.device, lambda *a: None, tiny, opts)
    held = _bytes(state.tensors()) + _bytes([tiny.x_train, tiny.y_train, tiny.x_test, tiny.y_test])
    assert gpu.job_memory_mb(specs, None) * 2**20 >= held + gpu.CONTEXT_MB * 2**20


def test_the_memory_estimate_grows_with_bucket_width_batch_and_sgdl():
    base = [spec(width=4, seed=s) for s in range(3)]
    est = lambda specs, **kw: gpu.job_memory_mb(specs, "cifar10-python", **kw)  # noqa: E731
    assert est(base) < est(base + [spec(width=4, seed=9), spec(width=4, seed=10)])   # bucket 4 -> 8
    assert est(base) == est(base + [spec(width=4, seed=9)])                            # still bucket 4
    assert est(base) < est([spec(width=16, seed=s) for s in range(3)])
    assert est(base) < est([spec(width=4, seed=s, batch_size=64) for s in range(3)])
    assert est(base) < est([spec(width=4, seed=s, noise=0.01) for s in range(3)])
    assert est(base) < est(base, min_bucket=16)
    # a single-run job: one slot; MNIST-shaped data is smaller than CIFAR's
    assert est(base[:1]) < est(base)
    assert gpu.job_memory_mb(base, "idx") < est(base)


# ---------------------------------------------------------------------------------------
# Limits


def fake_smi(folder: Path, rows: str) -> Path:
    """An nvidia-smi that answers the memory query with ``rows`` (index, MiB)."""
    folder.mkdir(parents=True, exist_ok=True)
    smi = folder / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\nprintf '{rows}'\n")
    smi.chmod(0o755)
    return folder


def test_local_limits_read_the_gpu_memory_from_nvidia_smi_or_config(tmp_path, monkeypatch):
    smi = fake_smi(tmp_path / "bin", "0, 143771\\n1, 81559\\n")
    monkeypatch.setenv("PATH", f"{smi}:{os.environ['PATH']}")
    assert gpu.smi_memory_mb(0) == 143771 and gpu.smi_memory_mb(1) == 81559 and gpu.smi_memory_mb(2) is None
    assert gpu.local_limits({"device": "cuda"}) == {"gpu": gpu.PACKS_PER_GPU,
                                                    "gpu_mem_mb": 143771 - gpu.margin_mb(143771)}
    assert gpu.local_limits({"device": "cuda:1"})["gpu_mem_mb"] == 81559 - gpu.margin_mb(81559)
    cfg = {"device": "cuda", "resources": {"packs_per_gpu": 2, "gpu_mem_mb": 40000}}
    assert gpu.local_limits(cfg) == {"gpu": 2, "gpu_mem_mb": 40000 - 4000}
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert gpu.local_limits({"device": "cuda"}) == {"gpu": gpu.PACKS_PER_GPU}   # memory unknown: no memory limit


# ---------------------------------------------------------------------------------------
# Compile cache

CACHE_PROBE = """
import sys
from deeptheory import gpu
env = gpu.use_compile_cache(sys.argv[1])
import torch
from torch._dynamo.utils import counters
import torch._inductor.config
from torch._inductor.runtime.cache_dir_utils import cache_dir
torch.compile(lambda x: (x.sin() * 2 + 1).sum(), dynamic=False)(torch.ones(8))
print(cache_dir(), torch._inductor.config.fx_graph_cache, dict(counters["inductor"]))
"""


def test_a_second_job_loads_the_compiled_step_from_the_builds_cache(tmp_path):
    """Two processes as two training jobs: the first compiles into the cache folder (about
    15 s of compiling on the CPU), the second finds its graph there (FX graph cache hit)."""
    cache = tmp_path / "results" / ".cache" / "inductor"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    env.pop("TORCHINDUCTOR_CACHE_DIR", None)
    env.pop("TORCHINDUCTOR_FX_GRAPH_CACHE", None)
    outs = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", CACHE_PROBE, str(cache)], env=env, capture_output=True,
                             text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        outs.append(out.stdout.strip())
    assert outs[0].startswith(f"{cache} True") and "fxgraph_cache_miss" in outs[0]
    assert "'fxgraph_cache_hit': 1" in outs[1] and "fxgraph_cache_miss" not in outs[1]
    assert (cache / "fxgraph").is_dir()


def test_training_jobs_set_the_compile_cache_before_torch(monkeypatch, tmp_path):
    """Each training script sets the cache before it imports torch (torch reads the FX
    graph cache switch at import), and a user's own folder wins."""
    for script in ("train.py", "train_pack.py"):
        text = (ROOT / "workflow" / "scripts" / script).read_text()
        assert text.index("gpu.use_compile_cache()") < text.index("import torch")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    assert gpu.use_compile_cache()["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / gpu.CACHE)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/elsewhere")
    assert gpu.use_compile_cache()["TORCHINDUCTOR_CACHE_DIR"] == "/elsewhere"


def dry_run(tmp_path, path: str, *args):
    out = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "2", "--directory", str(tmp_path / "build"),
                          "--configfile", "config/offline.yaml", "config/smoke.yaml", *args], cwd=ROOT,
                         capture_output=True, text=True, env={**os.environ, "PATH": path})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout + out.stderr


def test_the_workflow_declares_each_packs_gpu_memory_and_the_gpus_limits(tmp_path):
    """The smoke build's dry run on a machine whose nvidia-smi reports an H200 (143,771 MiB):
    each pack job declares gpu=1 and its estimate as gpu_mem_mb, and the run offers
    packs_per_gpu jobs and the memory less the margin; the user's --resources win. On the
    CPU nothing of it."""
    path = f"{fake_smi(tmp_path / 'bin', '0, 143771')}:{os.environ['PATH']}"
    out = dry_run(tmp_path, path)
    limit = 143771 - gpu.margin_mb(143771)
    assert f"at most {gpu.PACKS_PER_GPU} training jobs at once (resource gpu), {limit:,} MB of GPU memory" in out
    packs = [line for line in out.splitlines() if "resources:" in line and "runtime=720" in line]
    assert packs and all(", gpu=1, gpu_mem_mb=" in line for line in packs)
    declared = [int(line.split("gpu_mem_mb=")[1].split(",")[0]) for line in packs]
    assert all(gpu.CONTEXT_MB < m < limit for m in declared)
    mine = dry_run(tmp_path, path, "--resources", "gpu=1", "gpu_mem_mb=5000")
    assert "at most 1 training jobs at once (resource gpu), 5,000 MB of GPU memory" in mine
    cpu = dry_run(tmp_path, path, "--config", "device=cpu")
    assert "Training on one GPU" not in cpu and ", gpu=0, gpu_mem_mb=0" in cpu
