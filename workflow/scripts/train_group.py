"""Train a group of small runs one after another, each as rule train would (rule train_group_<k>)."""

from pathlib import Path

from deeptheory import gpu

COMPILE_CACHE = gpu.use_compile_cache()  # as train.py: before torch is imported

import torch  # noqa: E402

from deeptheory import logs, runio  # noqa: E402
from deeptheory.datasets import Dataset  # noqa: E402
from deeptheory.devices import job_device  # noqa: E402
from deeptheory.spec import RunSpec  # noqa: E402

sm = snakemake  # noqa: F821 (injected by Snakemake)
specs = [RunSpec.from_dict(d) for d in sm.params.specs]
log = logs.setup(sm.log[0])  # engine lines carry the run id
torch.set_num_threads(sm.threads)
device = job_device(sm.params.device, sm.resources.get("gpu", 0))
group = sm.params.group
log.info("group %s on %s: %d runs, one after another; compile cache %s", group, device, len(specs),
         COMPILE_CACHE["TORCHINDUCTOR_CACHE_DIR"])
data = Dataset.load(specs[0].dataset, Path(sm.input.data), device)
for i, spec in enumerate(specs, 1):
    # grid.run_groups leaves twins and their continuations out: no final state to keep or read
    result = runio.train_and_write(spec, data, profile=sm.params.profile, device=device,
                                   verified=Path(sm.input.verified), group=group)
    log.info("run %d of %d, %s, done in %.1f s", i, len(specs), spec.run_id, result.wall_s)
