"""One writer for every target: figure (PNG, PDF), table (CSV, Markdown), claim rows and
provenance under ``results/<target>/``, and the claims table of the whole build.

Every figure and table carries a caption naming the target id, its source in the memos and
the data set it was computed on, so a file that leaves the results folder still says what
it is.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from . import provenance
from .atomic import write_csv, write_json, write_text
from .tables import markdown_table, write_table
from .targets import Inputs, Outcome, Target

CLAIM_COLUMNS = ["id", "claim", "held", "measured", "detail"]
OUTPUTS = {"png": "figure.png", "pdf": "figure.pdf", "table": "table.csv", "table_md": "table.md",
           "claims": "claims.csv", "provenance": "provenance.json"}


def caption(target: Target, inputs: Inputs, outcome: Outcome) -> str:
    return (f"{target.id}: {target.what} ({target.source}). Data: {inputs.data}"
            + (f"; {outcome.setup}" if outcome.setup else "") + ".")


def build(target: Target, inputs: Inputs, outdir: Path, *, config: dict, runs_read: list[str] = (),
          data_checksums: dict | None = None) -> pd.DataFrame:
    """Build ``target`` from ``inputs`` and write its six files under ``outdir``; returns
    its claim rows. Provenance is written last: a folder with provenance is complete."""
    t0 = time.perf_counter()
    outcome = target.build(inputs)
    outdir = Path(outdir)
    text = caption(target, inputs, outcome)
    outcome.draw(text, outdir / OUTPUTS["png"], outdir / OUTPUTS["pdf"])
    table = outcome.table.copy()
    table.insert(0, "dataset", inputs.used or "synthetic")
    table.insert(0, "target", target.id)
    write_table(table, outdir / OUTPUTS["table"], outdir / OUTPUTS["table_md"], text)
    rows = pd.DataFrame(outcome.claims, columns=CLAIM_COLUMNS)
    bad = [cid for cid in rows["id"] if not str(cid).startswith(f"{target.id}:")]
    if bad:
        raise ValueError(f"claim ids must read '{target.id}:<name>', got {bad}")
    rows["detail"] = rows["detail"] + f"; data: {inputs.data}"
    write_csv(outdir / OUTPUTS["claims"], rows)
    write_json(outdir / OUTPUTS["provenance"], provenance.record(
        config=config, seeds={"seed": inputs.seed}, device=inputs.device, wall_s=time.perf_counter() - t0,
        data=data_checksums or {}, extra={"target": target.id, "caption": text, "runs": list(runs_read),
                                          **outcome.extra}))
    return rows


def gather_claims(paths, out_csv: Path, out_md: Path) -> pd.DataFrame:
    table = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    write_csv(out_csv, table)
    held = int(table["held"].sum())
    write_text(out_md, f"# Claims: {held} of {len(table)} held\n\n" + markdown_table(table))
    return table
