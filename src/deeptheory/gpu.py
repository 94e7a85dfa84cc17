"""Sharing one GPU between training jobs: how many at once, how much memory each needs, and
where their compiled kernels are kept (docs/PERFORMANCE.md, "Several packs on one GPU").

What ``workflow/rules/common.smk`` asks of the library, torch-free at import (a dry run stays
cheap; only the memory estimate imports torch, and only on the GPU path):

- :func:`local_limits`: the global resources of a local run on one GPU: ``gpu`` (training
  jobs at once: config ``resources.packs_per_gpu``) and ``gpu_mem_mb`` (the GPU's memory,
  from ``nvidia-smi`` or config ``resources.gpu_mem_mb``, less :func:`margin_mb`);
- :func:`job_memory_mb`: a training job's GPU memory, an upper bound from its runs' specs
  (parameters x bucket size, activations x batch x bucket size, the resident data set, the
  evaluation's chunks, the CUDA context), declared as the job's ``gpu_mem_mb``, so that
  Snakemake never starts packs whose sum exceeds the limit;
- :func:`compile_cache_env`: the environment that keeps inductor's compiled kernels in the
  build (``results/.cache/inductor``), so a second pack of the same shapes skips compiling.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from .devices import nvidia_driver
from .formats import IMAGE_SHAPE, TEST_IMAGES, TRAIN_IMAGES
from .spec import BATCH_STATISTICS

# Training jobs at once on one GPU (config resources.packs_per_gpu). Measured on one H200
# (issue 20): a pack job spends 15-20 s starting, loading data and compiling with the GPU
# idle, then steps at 0.29 ms (1 run) to 0.94 ms (16 runs); one job at a time left the GPU at
# 0% SM in 82 of 125 samples. With K jobs, K - 1 others step while one starts, so the starts
# stop costing GPU time once K - 1 packs' stepping covers one start. The estimate built on
# those numbers (python -m deeptheory.bench estimate) gives the paper profile 96, 90, 87, 85 min
# at K = 1, 2, 4, 8 on a time-sliced GPU (54.6 min at 4 with MPS, 53.0 at 8): the gain flattens
# by K = 4; 4 compiles at once fit the H200 machine's 16 cores, and any 4 paper packs its memory.
PACKS_PER_GPU = 4
# The CUDA context, cuBLAS / cuDNN workspaces and the caching allocator's slack of one process
# (torch.cuda.max_memory_allocated counts none of it; nvidia-smi shows ~0.5-1 GB per process).
CONTEXT_MB = 1024
# Kept free on the GPU: the synthetic targets' arrays (they run beside training on the same
# GPU without declaring memory), other users' processes, fragmentation.
MARGIN_SHARE, MARGIN_MIN_MB = 0.10, 2048
# Bytes per value (fp32: the upper bound; bf16 autocast halves the activations) and how many
# copies of each kind a step holds: parameters, momentum, gradients, the step's new
# parameters and momentum, and the CUDA graph's warm-up copy of both (8); per activation
# value the saved forward value, its gradient and one temporary (3); per input value the
# gathered minibatch and its gradient-free copy in the vmap (2).
FP32, PARAM_COPIES, ACTIVATION_COPIES, INPUT_COPIES = 4, 8, 3, 2
# The evaluation's chunk bounds (deeptheory.run.evaluation.EVAL_CHUNK, deeptheory.packed.EVAL_VALUES):
# repeated here so that the DAG needs no torch; tests/test_gpu.py checks they agree.
EVAL_CHUNK, EVAL_VALUES = 1000, 2**16
CACHE = "results/.cache/inductor"


def bucket(n: int) -> int:
    """deeptheory.packed.bucket without torch: the power of two at or above ``n``."""
    return 1 << max(0, int(n) - 1).bit_length()


def trains_on_cuda(device: str, on_cluster: bool) -> bool:
    """Whether training jobs run on CUDA, decided where the DAG is built (without torch).
    ``auto`` is CUDA where the NVIDIA driver's tool is on the PATH, and never on a cluster:
    the machine that submits says nothing about the nodes (there the GPU path is the user's
    own ``device=cuda``)."""
    device = str(device)
    if device == "auto":
        return not on_cluster and nvidia_driver()
    return device.startswith("cuda")


def packs_per_gpu(config: dict) -> int:
    return int((config.get("resources") or {}).get("packs_per_gpu", PACKS_PER_GPU))


def margin_mb(total_mb: int) -> int:
    return max(MARGIN_MIN_MB, math.ceil(MARGIN_SHARE * total_mb))


def device_index(device: str) -> int:
    """The GPU a job on ``device`` uses: N of cuda:N, else 0."""
    return int(device.split(":", 1)[1]) if device.startswith("cuda:") else 0


def smi_memory_mb(index: int = 0, smi: str = "nvidia-smi") -> int | None:
    """Total memory (MiB) of GPU ``index`` as nvidia-smi reports it; None if it cannot say."""
    if shutil.which(smi) is None:
        return None
    try:
        out = subprocess.run([smi, "--query-gpu=index,memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) == 2 and fields[0] == str(index) and fields[1].isdigit():
            return int(fields[1])
    return None


def local_limits(config: dict) -> dict:
    """Global resources of a local run training on one GPU: ``gpu`` (training jobs at once)
    and, where the GPU's memory is known (config ``resources.gpu_mem_mb``, else nvidia-smi),
    ``gpu_mem_mb`` (that memory less the margin)."""
    limits = {"gpu": packs_per_gpu(config)}
    total = (config.get("resources") or {}).get("gpu_mem_mb")
    if total is None:
        total = smi_memory_mb(device_index(str(config.get("device", "auto"))))
    if total:
        limits["gpu_mem_mb"] = int(total) - margin_mb(int(total))
    return limits


def limits_notice(limits: dict) -> str:
    """The line a local GPU build starts with: what its training jobs share."""
    memory = limits.get("gpu_mem_mb")
    guard = (f"{memory:,} MB of GPU memory among them (resource gpu_mem_mb)" if memory is not None
             else "no memory limit (nvidia-smi gave no memory: set config resources.gpu_mem_mb)")
    return (f"Training on one GPU: at most {limits.get('gpu')} training jobs at once (resource gpu), {guard}; "
            f"--resources gpu=N gpu_mem_mb=M changes them")


# ---------------------------------------------------------------------------------------
# One job's memory


@lru_cache(maxsize=None)
def model_counts(model: str, width: int, input_shape: tuple, num_classes: int) -> tuple[int, int, int]:
    """(parameters, activation values per image summed over every layer's output, the
    largest one layer's output per image) of one model, from one forward of one image on
    torch's meta device (shapes only; a real CPU forward where a model cannot run there)."""
    import torch

    from . import models

    def counts(device):
        with torch.device(device):
            net = models.build(model, width, input_shape, num_classes)
        outs = []
        hooks = [m.register_forward_hook(lambda _m, _i, o: outs.append(o.numel() if torch.is_tensor(o) else 0))
                 for m in net.modules() if not list(m.children())]
        with torch.no_grad():
            net.eval()(torch.zeros((1, *input_shape), device=device))
        for h in hooks:
            h.remove()
        return sum(p.numel() for p in net.parameters()), sum(outs), max(outs, default=0)

    try:
        return counts("meta")
    except Exception:  # noqa: BLE001 (an op without a meta kernel: count on the CPU)
        return counts("cpu")


def job_memory_mb(specs, fmt: str | None, min_bucket: int | None = None) -> int:
    """GPU memory (MB) of a job training ``specs`` (one pack key, or one run) on data of
    format ``fmt``: an upper bound at fp32, every part held at once. ``min_bucket``: the
    packed step's floor (env DEEPTHEORY_PACK_MIN_BUCKET as the job will read it)."""
    first = specs[0]
    shape = IMAGE_SHAPE.get(fmt, (3, 32, 32))
    image = math.prod(shape)
    params, activations, widest = model_counts(first.model, first.width, tuple(shape), 10)
    floor = min_bucket if min_bucket is not None else int(os.environ.get("DEEPTHEORY_PACK_MIN_BUCKET") or 1)
    slots = max(bucket(floor), bucket(len(specs))) if len(specs) > 1 else 1
    n_max = max(s.N for s in specs)
    batch = first.batch_size
    n_test = first.n_test if first.n_test is not None else TEST_IMAGES.get(fmt, 10_000)
    values = (slots * PARAM_COPIES * params
              + slots * batch * (ACTIVATION_COPIES * activations + INPUT_COPIES * image)
              + (TRAIN_IMAGES.get(fmt, 60_000) + n_test) * image)          # the resident data set
    if any(s.noise for s in specs):  # SGDL: each slot's noise for every update of an epoch
        values += slots * -(-n_max // batch) * params
    chunk = EVAL_CHUNK if first.model in BATCH_STATISTICS else max(1, min(EVAL_CHUNK, EVAL_VALUES // slots))
    values += chunk * slots * (image + 2 * widest)                       # one evaluation chunk
    index_bytes = 2 * 8 * slots * n_max                                  # order and labels (int64)
    return CONTEXT_MB + math.ceil((FP32 * values + index_bytes) / 2**20)


# ---------------------------------------------------------------------------------------
# Compile cache


def compile_cache_env(root: str | Path = CACHE) -> dict:
    """Environment for a training job: inductor's caches (its FX graph cache and its
    autotuning / kernel cache) in ``root``, shared by every job of the build, so a pack whose
    shapes an earlier one compiled loads the kernels instead of compiling them again. Set it
    before torch is imported (torch reads TORCHINDUCTOR_FX_GRAPH_CACHE at import)."""
    return {"TORCHINDUCTOR_CACHE_DIR": str(Path(root).resolve()), "TORCHINDUCTOR_FX_GRAPH_CACHE": "1",
            "TORCHINDUCTOR_AUTOGRAD_CACHE": "1"}


def use_compile_cache(root: str | Path = CACHE) -> dict:
    """Set :func:`compile_cache_env` in this process (a user's own values win); returns what
    is in effect. Inductor makes the folder when it first writes (a CPU job, which does not
    compile, leaves none)."""
    env = compile_cache_env(root)
    for k, v in env.items():
        os.environ.setdefault(k, v)
    return {k: os.environ[k] for k in env}
