"""Train every run of one architecture in one packed pass (rule train_pack).

Runs whose outputs already come from the same spec are skipped, so a changed grid value
trains only the runs it adds; the pack's index lists every run with its final numbers.
"""

from pathlib import Path

import pandas as pd
import torch

from deeptheory import logs, runio
from deeptheory.atomic import write_csv
from deeptheory.datasets import Dataset
from deeptheory.engine import resolve_device
from deeptheory.packed import train_runs
from deeptheory.spec import RunSpec

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = logs.setup(sm.log[0])
torch.set_num_threads(sm.threads)
device = resolve_device(sm.params.device)
specs = [RunSpec.from_dict(d) for d in sm.params.specs]
root = Path(sm.params.results_root)
todo = [s for s in specs if not runio.is_done(runio.run_dir(root, s), s)]
log.info("pack %s on %s: %d runs, %d to train", sm.wildcards, device, len(specs), len(todo))

data = Dataset.load(specs[0].dataset, Path(sm.input.data), device)
ckpt_dir = Path(sm.params.checkpoint_dir)
for result in train_runs(todo, data, checkpoint_dir=ckpt_dir, pack=True):
    runio.write_run(result, runio.run_dir(root, result.spec), profile=sm.params.profile, device=device,
                    verified=Path(sm.input.verified), engine="packed")
    (ckpt_dir / (result.spec.run_id.replace("/", "__") + ".pt")).unlink(missing_ok=True)

index = []
for s in specs:
    final = pd.read_csv(runio.run_dir(root, s) / "metrics.csv").iloc[-1]
    index.append({"run_id": s.run_id, "epoch": final["epoch"], "train_err": final["train_err"],
                  "test_err": final["test_err"], "trained_now": s in todo})
write_csv(sm.output[0], pd.DataFrame(index))
