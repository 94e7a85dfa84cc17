"""Build one target, data-set or synthetic, through the one contract (rule target)."""

import sys
from pathlib import Path

import pandas as pd

from deeptheory import claims, logs, report
from deeptheory.atomic import load_arrays
from deeptheory.devices import visible_device_name
from deeptheory.targets import Inputs, get, unit_arrays

sm = snakemake  # noqa: F821 (injected by Snakemake)
tid = sm.wildcards.target
log = logs.setup(sm.log[0], tid)
target = get(tid)
target.module()  # its family's imports: torch only where the family computes with it
if "torch" in sys.modules:
    sys.modules["torch"].set_num_threads(sm.threads)
cfg = sm.params.target_cfg
runs = list(sm.input.runs)
inputs = Inputs(target=tid, cfg=cfg, tol=claims.Tolerances(sm.params.claims_cfg), seed=sm.params.seed,
                runs=pd.concat([pd.read_csv(p) for p in runs], ignore_index=True) if runs else None,
                requested=sm.params.requested,
                used=sm.params.used, descriptions=sm.params.descriptions,
                device=visible_device_name(sm.params.device),
                analyses=pd.concat([pd.read_csv(p) for p in sm.input.analyses], ignore_index=True)
                if sm.input.get("analyses") else None,
                arrays={u: a for p in sm.input.get("arrays", []) for u, a in unit_arrays(load_arrays(p)).items()})
log.info("building %s from %d runs with %s", tid, len(runs), cfg)
rows = report.build(target, inputs, Path(sm.output.claims).parent,
                    runs_read=runs, analyses_read=list(sm.input.get("analyses", [])),
                    config={"profile": sm.params.profile, "target": cfg, "claims": sm.params.claims_cfg,
                            "used": sm.params.used})
for r in rows.itertuples():
    log.info("%s  %s%s  %s", r.id, r.verdict, f" ({r.reason})" if r.reason else "", r.measured)
