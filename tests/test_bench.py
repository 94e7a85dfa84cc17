"""The benchmark's pieces: the realistic loader's transforms, the paper estimate's arithmetic."""

import numpy as np
import pytest
import torch

from deeptheory import bench
from deeptheory.datasets import Dataset


def test_the_loader_dataset_gives_what_the_resident_data_holds():
    arrays = bench.cifar_arrays(8)
    from torchvision import transforms
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.25,) * 3)])
    ds = bench.ArrayImages(np.ascontiguousarray(arrays["x_train"].transpose(0, 2, 3, 1)), arrays["y_train"], tf)
    resident = Dataset("bench", arrays)
    x, y = ds[3]
    torch.testing.assert_close(x, resident.x_train[3])
    assert y == int(resident.y_train[3])


def test_the_paper_estimate_walks_each_pack_down_its_bucket_sizes():
    """Latency 1 ms at every measured point: the estimate is the sum over packs of their
    longest run's steps; a bucket above the largest measured one scales up linearly."""
    measured = {("allconv5", w, s): (1e-3, 2.0) for w in (16, 64) for s in (1, 4, 16, 64, 256)}
    est = bench.paper_estimate(measured, None, bench.ROOT / "config" / "config.yaml")
    plan, _ = bench.paper_plan(bench.ROOT / "config" / "config.yaml")
    longest = sum(max(plan.specs[r].epoch_cap * -(-plan.specs[r].N // plan.specs[r].batch_size) for r in runs)
                  for runs in plan.packs.values())
    assert est["steps"] == longest and est["runs"] == len(plan.specs) and est["packs"] == len(plan.packs)
    # a width beyond the widest measured (64) scales its pack's latency by width / 64
    scaled = sum(max(plan.specs[r].epoch_cap * -(-plan.specs[r].N // plan.specs[r].batch_size) for r in runs)
                 * max(1.0, plan.specs[runs[0]].width / 64) for runs in plan.packs.values())
    assert est["train_s"] == pytest.approx(scaled * 1e-3)
    assert est["warm_s"] > 0


def test_nearest_measurement_rounds_up():
    measured = {("allconv5", 16, 4): (1.0, 0.0), ("allconv5", 16, 16): (2.0, 0.0), ("allconv5", 64, 4): (3.0, 0.0)}
    assert bench._nearest(measured, "allconv5", 8, 2)[0] == 1.0      # width 16, size 4
    assert bench._nearest(measured, "allconv5", 16, 8)[0] == 2.0     # size 16
    assert bench._nearest(measured, "cnn5", 32, 4)[0] == 3.0         # allconv5's, width 64
    assert bench._nearest(measured, "allconv5", 128, 4)[0] == 6.0    # scaled by 128 / 64


def test_the_small_cpu_bench_runs(capsys):
    bench.main(["--device", "cpu", "--images", "256", "--sizes", "1", "2", "--widths", "4", "--steps", "2",
                "--no-loaders"])
    out = capsys.readouterr().out
    assert "Packed step latency" in out and "latency estimate" in out and "throughput estimate" in out


TOY = '''
import sys
from pathlib import Path

sys.path.insert(0, SRC)

def train_resources(name, default):
    return config.get("resources", {}).get(name, default)

src = Path(COMMON).read_text()
exec(src[src.index("# Several training jobs on one GPU"):])

rule all:
    input: expand("out/{i}.txt", i=range(3))

rule train:
    output: "out/{i}.txt"
    resources: gpu=TRAIN_GPUS, gpu_mem_mb=3000 if SHARED_GPU else 0
    shell: "python -c 'import time; t = time.time(); time.sleep(1.5); print(t, time.time())' > {output}"
'''


@pytest.mark.parametrize("args, most", [
    (["--config", "device=cuda", "resources={packs_per_gpu: 1}"], 1),
    (["--config", "device=cuda", "resources={packs_per_gpu: 3}"], 3),
    (["--config", "device=cpu"], 2),
    # the memory guard: 3 slots, but 3,000 MB jobs in 8,000 - 2,048 MB of GPU memory
    (["--config", "device=cuda", "resources={packs_per_gpu: 3, gpu_mem_mb: 8000}"], 1),
    # the user's --resources win over both limits
    (["--config", "device=cuda", "resources={packs_per_gpu: 3, gpu_mem_mb: 8000}", "--resources", "gpu_mem_mb=6000"], 2),
    (["--config", "device=cuda", "--resources", "gpu=1"], 1)])
def test_training_jobs_share_the_gpu_within_its_slots_and_memory(tmp_path, args, most):
    """The block of workflow/rules/common.smk that limits GPU jobs, in a toy workflow of
    three 1.5 s training jobs of 3,000 MB each run with --cores 3: how many ever overlap."""
    import subprocess
    import sys

    (tmp_path / "Snakefile").write_text(f"COMMON = {str(bench.ROOT / 'workflow' / 'rules' / 'common.smk')!r}\n"
                                        f"SRC = {str(bench.ROOT / 'src')!r}\n" + TOY)
    out = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "3" if "cpu" not in args[1] else "2", "-q",
                          *args], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    spans = [tuple(map(float, p.read_text().split())) for p in (tmp_path / "out").iterdir()]
    overlap = max(sum(1 for a, b in spans if a <= start < b) for start, _ in spans)
    assert overlap == most
