"""Analyse the units of one analysis job (rule analyze): a table and arrays."""

from pathlib import Path

import torch

from deeptheory import analyses, logs, paths
from deeptheory.atomic import save_arrays, write_csv
from deeptheory.datasets import Dataset
from deeptheory.devices import visible_device
from deeptheory.targets import get

sm = snakemake  # noqa: F821 (injected by Snakemake)
tid, job = sm.wildcards.target, sm.wildcards.run
log = logs.setup(sm.log[0], f"{tid} {job}")
torch.set_num_threads(sm.threads)
device = visible_device(sm.params.device)
data = Dataset.load(job.split("/", 1)[0], Path(sm.input.data), device)
units = {u: [paths.run_dir(r) for r in runs] for u, runs in sm.params.units.items()}
log.info("analysing %d unit(s), %d run(s), on %s with %s", len(units), sum(map(len, units.values())), device,
         sm.params.target_cfg.get("analysis", {}))
table, arrays = analyses.analyze_job(get(tid), units, data, sm.params.target_cfg.get("analysis", {}), sm.params.seed)
write_csv(Path(sm.output.table), table)
save_arrays(Path(sm.output.arrays), arrays)
log.info("wrote %d rows", len(table))
