"""Fetch one data set's archives through DVC and verify them (rule fetch_dataset)."""

import sys
from pathlib import Path

from deeptheory import fetch, logs
from deeptheory.atomic import write_json

sm = snakemake  # noqa: F821 (injected by Snakemake)
dataset = sm.wildcards.dataset
log = logs.setup(sm.log[0], f"fetch {dataset}")
out = Path(sm.output[0])
try:
    report = fetch.fetch_dataset(dataset, sm.params.dataset_cfg, data_root=out.parents[2])
except fetch.DataSourceError as err:
    log.error("%s\n  Without network access, run from local sources: --configfile config/offline.yaml", err)
    sys.exit(1)
write_json(out, report)
