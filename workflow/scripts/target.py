"""Figure, table and claim rows of one target from its runs (rules target_<id>)."""

import time
from pathlib import Path

from deeptheory import logs, provenance, targets
from deeptheory.atomic import write_json

sm = snakemake  # noqa: F821 (injected by Snakemake)
t0 = time.perf_counter()
log = logs.setup(sm.log[0], sm.params.target)
rows = targets.report(sm.params.target, list(sm.params.metrics), sm.params.target_cfg, sm.params.claims_cfg,
                      sm.params.substitute, Path(sm.output.claims).parent)
for r in rows.itertuples():
    log.info("%s  held=%s  %s", r.id, r.held, r.measured)
write_json(sm.output.provenance, provenance.record(
    config={"profile": sm.params.profile, "target": sm.params.target_cfg, "claims": sm.params.claims_cfg,
            "substitute": sm.params.substitute},
    seeds={}, device="cpu", wall_s=time.perf_counter() - t0, data={},
    extra={"runs": list(sm.params.metrics)}))
