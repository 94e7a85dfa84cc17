"""Run one synthetic target: computation, figure, table and claim rows (rules target_<id>)."""

import time
from pathlib import Path

from deeptheory import logs, provenance
from deeptheory.atomic import write_json
from deeptheory.synthetic.targets import report

sm = snakemake  # noqa: F821 (injected by Snakemake)
t0 = time.perf_counter()
log = logs.setup(sm.log[0], sm.params.target)
log.info("running %s with %s", sm.params.target, sm.params.target_cfg)
rows = report(sm.params.target, sm.params.target_cfg, sm.params.claims_cfg, sm.params.seed,
              Path(sm.output.claims).parent)
for r in rows.itertuples():
    log.info("%s  held=%s  %s", r.id, r.held, r.measured)
write_json(sm.output.provenance, provenance.record(
    config={"profile": sm.params.profile, "target": sm.params.target_cfg, "claims": sm.params.claims_cfg},
    seeds={"seed": sm.params.seed}, device="cpu", wall_s=time.perf_counter() - t0, data={}))
