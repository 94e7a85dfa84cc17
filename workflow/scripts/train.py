"""Train one run and write its metrics, weights and provenance (rule train)."""

from pathlib import Path

from deeptheory import gpu

# Inductor's caches in the build, shared by every training job (before torch is imported):
# a pack whose shapes an earlier job compiled loads its kernels (docs/PERFORMANCE.md).
COMPILE_CACHE = gpu.use_compile_cache()

import torch  # noqa: E402

from deeptheory import grid, logs, runio  # noqa: E402
from deeptheory.datasets import Dataset  # noqa: E402
from deeptheory.devices import job_device  # noqa: E402
from deeptheory.spec import RunSpec  # noqa: E402

sm = snakemake  # noqa: F821 (injected by Snakemake)
spec = RunSpec.from_dict(sm.params.spec)
log = logs.setup(sm.log[0])  # engine lines carry the run id
torch.set_num_threads(sm.threads)
device = job_device(sm.params.device, sm.resources.get("gpu", 0))
log.info("run %s on %s: %s; compile cache %s", spec.run_id, device, spec, COMPILE_CACHE["TORCHINDUCTOR_CACHE_DIR"])

data = Dataset.load(spec.dataset, Path(sm.input.data), device)
# A run that continues its twin (input twin: its model.pt, with the twin's final state)
twin = runio.twin_state(Path(sm.input.twin), log) if getattr(sm.input, "twin", None) else None
# Whether a run continues this one is read from the plan, not passed as a param: a target
# that adds or drops a continuation leaves this run's job as it was (a param would rerun it).
result = runio.train_and_write(spec, data, profile=sm.params.profile, device=device, verified=Path(sm.input.verified),
                               keep_state=spec.run_id in grid.plan(sm.config).continued, twin=twin)
log.info("done in %.1f s", result.wall_s)
