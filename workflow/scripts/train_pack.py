"""Train every run of one pack in one packed pass (rule train_pack).

The pack's folder holds each run's files under the run id. A run already finished from
the same spec (its files in results/runs/<run id>/, from an earlier build in either mode)
is linked in rather than trained again, so a changed grid value trains only the runs it
adds.
"""

from pathlib import Path

from deeptheory import gpu

# Inductor's caches in the build, shared by every training job (before torch is imported):
# a pack whose shapes an earlier job compiled loads its kernels (docs/PERFORMANCE.md).
COMPILE_CACHE = gpu.use_compile_cache()

import torch  # noqa: E402

from deeptheory import grid, logs, paths, runio  # noqa: E402
from deeptheory.datasets import Dataset  # noqa: E402
from deeptheory.packed import train_runs  # noqa: E402
from deeptheory.devices import job_device  # noqa: E402
from deeptheory.spec import RunSpec, twins  # noqa: E402

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = logs.setup(sm.log[0])
torch.set_num_threads(sm.threads)
device = job_device(sm.params.device, sm.resources.get("gpu", 0))
specs = [RunSpec.from_dict(d) for d in sm.params.specs]
pack = Path(sm.output[0])
todo = []
for s in specs:
    done = paths.run_dir(s.run_id)
    if paths.is_done(done, s):
        runio.link_run(done, pack / s.run_id, stamp=False)
    else:
        todo.append(s)
log.info("pack %s on %s: %d runs, %d to train; compile cache %s", sm.wildcards.pack, device, len(specs), len(todo),
         COMPILE_CACHE["TORCHINDUCTOR_CACHE_DIR"])

if todo:
    data = Dataset.load(specs[0].dataset, Path(sm.input.data), device)
    # A run to train whose twin (the same run, a shorter stop rule: grid.pack_members puts
    # it in the pack) finished before goes on from the final state its model.pt keeps; one
    # whose twin trains here goes on from it in the pack (packed.train_packed).
    pairs, names = twins(specs), {s.run_id for s in todo}
    twin_states = {r: runio.twin_state(paths.run_dir(t.run_id) / "model.pt", log) for r, t in pairs.items()
                   if r in names and t.run_id not in names}
    continued = grid.plan(sm.config).continued  # read, not a param: see train.py
    for result in train_runs(todo, data, results_root=paths.RESULTS, pack=True, twin_states=twin_states):
        # Its checkpoint (at its stop) stays until run_from_pack has linked the run out: if
        # this job is killed later, Snakemake clears the folder, and the rerun resumes the
        # run at its stop instead of training it again.
        runio.write_run(result, pack / result.spec.run_id, profile=sm.params.profile, device=device,
                        verified=Path(sm.input.verified), engine="packed",
                        keep_state=result.spec.run_id in continued)
