"""Analyse one unit of a target's trained runs (rule analyze): a table and arrays."""

from pathlib import Path

import torch

from deeptheory import analyses, logs, paths
from deeptheory.atomic import save_arrays, write_csv
from deeptheory.datasets import Dataset
from deeptheory.devices import visible_device
from deeptheory.targets import get

sm = snakemake  # noqa: F821 (injected by Snakemake)
tid, unit = sm.wildcards.target, sm.wildcards.run
log = logs.setup(sm.log[0], f"{tid} {unit}")
torch.set_num_threads(sm.threads)
device = visible_device(sm.params.device)
data = Dataset.load(unit.split("/", 1)[0], Path(sm.input.data), device)
runs = [analyses.load(paths.run_dir(r), data) for r in sm.params.members]
log.info("analysing %d run(s) on %s with %s", len(runs), device, sm.params.target_cfg.get("analysis", {}))
result = get(tid).analyze(runs, sm.params.target_cfg.get("analysis", {}), sm.params.seed)
table = result.table.copy()
table.insert(0, "unit", unit)
write_csv(Path(sm.output.table), table)
save_arrays(Path(sm.output.arrays), result.arrays)
log.info("wrote %d rows", len(table))
