"""profiles/slurm on a real one-node SLURM cluster: tests/slurm/run-local-cluster.sh --smoke.

The cluster test runs where SLURM is installed (`sinfo` on PATH, Debian's slurm-wlm and munge) and this
process is root; skipped elsewhere, so CI on a plain machine skips it. About 4 minutes on
2 cores. Select it alone with `python -m pytest -m slurm`; add `--slurmdbd` by hand
(tests/slurm/run-local-cluster.sh --help). The full proof, the quick profile:
`tests/slurm/run-local-cluster.sh` (about 12 minutes on 2 cores).
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "slurm" / "run-local-cluster.sh"

# Only the cluster run needs SLURM; the dry-run and device tests below run everywhere (CI too).
@pytest.mark.slurm
@pytest.mark.skipif(shutil.which("sinfo") is None, reason="SLURM not installed (apt-get install slurm-wlm munge)")
def test_profile_on_local_slurm(tmp_path):
    out = subprocess.run([str(SCRIPT), "--smoke", "--workdir", str(tmp_path)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=1800)
    if out.returncode == 2:  # the script's own prerequisites (root, daemons, a cluster running already)
        pytest.skip(out.stdout.strip().splitlines()[-1])
    assert out.returncode == 0, out.stdout
    assert "PASS" in out.stdout and "resuming from checkpoint at epoch" in out.stdout


def train_jobs(output: str) -> list[str]:
    """The text of every train job of a dry run's output."""
    return output.split("rule train:")[1:]


@pytest.mark.parametrize("args, resources, expect", [
    (["--config", "device=auto", "--set-resources", "train:runtime=5"], None,
     ["mem_mb=2000", "runtime=5", "gpu=0"]),
    (["--config", "device=cuda"], None, ["mem_mb=16000", "runtime=240", "gpu=1"]),
    (["--config", "device=cuda", "--set-resources", "train:runtime=7"], {"train_mem_mb": 3000, "train_threads": 2},
     ["mem_mb=3000", "runtime=7", "gpu=1"]),
])
def test_cluster_jobs_ask_for_what_they_use_whatever_the_user_passes(tmp_path, args, resources, expect):
    """A dry run as on a cluster (--jobs without local cores: an executor's run): the rules'
    own resources hold beside the user's --config and --set-resources, and only device=cuda
    asks for a GPU (device auto means the CPU there, whatever this machine has)."""
    from conftest import make_sources, snakemake
    from test_workflow import tiny_config

    config = tiny_config(make_sources(tmp_path))
    if resources:
        config["resources"] = resources
    out = snakemake(tmp_path, config, "-n", "--jobs", "10", *args)
    assert out.returncode == 0, out.stdout[-3000:]
    jobs = train_jobs(out.stdout)
    assert jobs
    for job in jobs:
        for e in expect:
            assert re.search(rf"(\b|, ){re.escape(e)}(,|$|\n)", job), (e, job)


def test_a_job_trains_on_cuda_under_auto_only_when_it_holds_a_gpu():
    import torch

    from deeptheory.devices import job_device, resolve_device, visible_device

    assert job_device("auto", 0) == torch.device("cpu")  # a cluster job without a GPU, on any node
    assert job_device("auto", 1) == resolve_device("auto")
    assert job_device("cpu", 1) == torch.device("cpu")
    assert visible_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():  # a target job on the GPU path, on a node it holds no GPU of
        assert visible_device("cuda") == torch.device("cpu")
