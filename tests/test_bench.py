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
    est = bench.paper_estimate(measured, None)
    plan, _ = bench.paper_plan()
    longest = sum(max(plan.specs[r].max_epochs * -(-plan.specs[r].N // plan.specs[r].batch_size) for r in runs)
                  for runs in plan.packs.values())
    assert est["steps"] == longest and est["runs"] == len(plan.specs) and est["packs"] == len(plan.packs)
    # a width beyond the widest measured (64) scales its pack's latency by width / 64
    scaled = sum(max(plan.specs[r].max_epochs * -(-plan.specs[r].N // plan.specs[r].batch_size) for r in runs)
                 * max(1.0, plan.specs[runs[0]].width / 64) for runs in plan.packs.values())
    assert est["train_s"] == pytest.approx(scaled * 1e-3)
    assert est["warm_s"] > 0


def test_the_paper_plan_reads_the_config_a_build_with_its_configfiles_sees(tmp_path):
    """Through the one loader: a --configfile merges over config/config.yaml, and a bad key is
    the loader's one-line error naming it and its file."""
    one_seed = tmp_path / "one-seed.yaml"
    one_seed.write_text("profiles: {paper: {seeds: [0]}}\n")
    plan, paper = bench.paper_plan([one_seed])
    assert paper["seeds"] == [0]
    assert len(plan.specs) < len(bench.paper_plan()[0].specs)
    bad = tmp_path / "bad.yaml"
    bad.write_text("profiles: {paper: {seedz: [0]}}\n")
    with pytest.raises(bench.configcheck.ConfigError, match=rf"config key profiles.paper.seedz: unknown key.*{bad}"):
        bench.paper_plan([bad])


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


def test_packs_at_once_share_the_starts_and_keep_the_longest_pack():
    packs, starts = [10.0, 4.0, 2.0, 2.0], [1.0] * 4
    assert bench.concurrent_wall(packs, starts, 1) == sum(packs) + sum(starts)      # one at a time: all add
    assert bench.concurrent_wall(packs, starts, 2) == 11.0                          # the longest pack and its start
    assert bench.concurrent_wall(packs, starts, 2, floor_s=18.0) == 18.0 + 2.0       # a time-sliced device: its sum
    assert bench.concurrent_wall([3.0] * 4, starts, 4) == 4.0


def test_step_latency_is_interpolated_geometrically_between_measured_buckets():
    lat = bench.interpolated({1: 1.0, 16: 16.0})
    assert sorted(lat) == [1, 2, 4, 8, 16] and lat[4] == pytest.approx(4.0) and lat[2] == pytest.approx(2.0)


def test_the_h200_calibration_reproduces_its_measured_pack():
    """The evaluation cost is fitted so that the model gives the 45 s pack job exactly."""
    cal = bench.h200_calibration()
    assert cal["train_s"] + cal["overhead_s"] + cal["eval_s"] * cal["eval_images"] == pytest.approx(45.0)
    assert cal["steps"] == 500 * 79  # N = 10,000 at batch 128, 500 epochs


def fake_build(root, jobs, start=3.0, per_step=2e-3):
    """A finished build of single-run jobs whose times follow the model exactly."""
    import json

    from deeptheory.spec import RunSpec

    (root / "config").mkdir(parents=True)
    (root / "config" / "config.yaml").write_text("datasets: {cifar10: {format: cifar10-python}}\n")
    for i, (width, n, epochs) in enumerate(jobs):
        s = RunSpec("cifar10", "allconv5", width, n, seed=i, lr=0.05, momentum=0.9, batch_size=128, max_epochs=epochs,
                    eval_every=10, n_test=100)
        folder = root / "results" / "runs" / s.run_id
        folder.mkdir(parents=True)
        steps = epochs * -(-n // 128)
        job = {"spec": s, "format": "cifar10-python", "steps": steps, "eval_images": (epochs // 10) * (n + 100)}
        x = bench._features(job)
        wall = per_step * x[0] + 1e-3 * x[1] + 2e-3 * x[2]
        rows = "epoch,wall_s\n" + "".join(f"{e},{wall * e / epochs}\n" for e in range(10, epochs + 1, 10))
        (folder / "metrics.csv").write_text(rows)
        (folder / "provenance.json").write_text(json.dumps({"config": {"spec": s.to_dict()},
                                                            "created": f"2026-01-01T00:{i:02d}:00+00:00"}))
        bench_dir = root / "benchmarks" / "train" / "cifar10"
        bench_dir.mkdir(parents=True, exist_ok=True)
        (bench_dir / f"{s.run_id.split('/')[1]}.tsv").write_text(f"s\th:m:s\n{wall + start}\t0\n")
    return root


def test_the_cpu_calibration_recovers_a_build_that_follows_the_model(tmp_path, capsys):
    build = fake_build(tmp_path / "b", [(2, 500, 20), (4, 1000, 30), (8, 300, 50), (4, 2000, 10), (2, 700, 40),
                                        (8, 900, 20)])
    cal = bench.cpu_calibration(build, 2)
    assert cal["jobs"] == 6 and cal["overhead_s"] == pytest.approx(3.0)
    assert cal["coef"] == pytest.approx([2e-3, 1e-3, 2e-3], rel=1e-6)
    assert cal["median_rel_err"] < 1e-6 and cal["sum_pred_s"] == pytest.approx(cal["sum_job_s"])
    bench.main(["estimate", "--build", str(build), "--ks", "1", "4"])
    out = capsys.readouterr().out
    assert "ESTIMATE" in out and "MPS" in out and "6 single-run jobs" in out and "median error 0.0%" in out


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
