"""Train one run and write its metrics, weights and provenance (rule train)."""

from pathlib import Path

import pandas as pd
import torch

from deeptheory import logs, provenance
from deeptheory.atomic import save_torch, write_csv, write_json
from deeptheory.datasets import Dataset
from deeptheory.engine import resolve_device, train_run
from deeptheory.spec import RunSpec

sm = snakemake  # noqa: F821 (injected by Snakemake)
spec = RunSpec.from_dict(sm.params.spec)
log = logs.setup(sm.log[0])  # engine lines carry the run id
torch.set_num_threads(sm.threads)
device = resolve_device(sm.params.device)
log.info("run %s on %s: %s", spec.run_id, device, spec)

data = Dataset.load(spec.dataset, Path(sm.input.data), device)
checkpoint = Path(sm.params.checkpoint)
result = train_run(spec, data, checkpoint=checkpoint)

write_csv(sm.output.metrics, pd.DataFrame(result.rows))
save_torch(sm.output.model, {"spec": spec.to_dict(), "state_dict": result.state_dict})
write_json(sm.output.provenance, provenance.record(
    config={"profile": sm.params.profile, "spec": spec.to_dict()},
    seeds={"seed": spec.seed, "label_seed": spec.label_seed if spec.labels == "random" else None},
    device=device, wall_s=result.wall_s,
    data=provenance.data_checksums(Path(sm.input.verified)),
    extra={"run_id": spec.run_id, "resumed_from_epoch": result.resumed_from_epoch,
           "final": result.rows[-1]}))
checkpoint.unlink(missing_ok=True)  # the run is done; model.pt keeps its weights
log.info("done in %.1f s", result.wall_s)
