"""One writer for every target: figure (PNG, PDF), table (CSV, Markdown), claim rows and
provenance under ``results/<target>/``, and the claims table of the whole build.

Every figure and table carries a caption naming the target id, its source in the memos and
the data set it was computed on, so a file that leaves the results folder still says what
it is. Under the caption, ``figure.png`` lists every claim of the target with its verdict
(held, refuted or inconclusive with its reason, in three colours, and what was measured), so
the figure in the Snakemake report shows the verdicts beside the plot.

A target's provenance records the sha256 of each run's metrics it read
(``runs_sha256``): ``deeptheory.audit`` calls the target stale once a run it read has
changed since.
"""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pandas as pd

from . import provenance
from .claims import HELD, INCONCLUSIVE, REFUTED, VERDICTS
from .atomic import atomic_path, write_csv, write_json, write_text
from .manifest import sha256_file
from .tables import markdown_table, write_table
from .targets import Inputs, Outcome, Target

CLAIM_COLUMNS = ["id", "claim", "verdict", "reason", "measured", "detail"]
VERDICT_COLOURS = {HELD: "darkgreen", REFUTED: "firebrick", INCONCLUSIVE: "darkorange"}
OUTPUTS = {"png": "figure.png", "pdf": "figure.pdf", "table": "table.csv", "table_md": "table.md",
           "claims": "claims.csv", "provenance": "provenance.json"}


def caption(target: Target, inputs: Inputs, outcome: Outcome) -> str:
    return (f"{target.id}: {target.what} ({target.source}). Data: {inputs.data}"
            + (f"; {outcome.setup}" if outcome.setup else "") + ".")


def build(target: Target, inputs: Inputs, outdir: Path, *, config: dict, runs_read: list[str] = (),
          analyses_read: list[str] = (), data_checksums: dict | None = None) -> pd.DataFrame:
    """Build ``target`` from ``inputs`` and write its six files under ``outdir``; returns
    its claim rows. Provenance is written last: a folder with provenance is complete.
    ``runs_read`` (metrics files) and ``analyses_read`` (analysis tables) are recorded with
    their sha256, so the audit calls the target stale once either changed."""
    t0 = time.perf_counter()
    outcome = target.build(inputs)
    outdir = Path(outdir)
    text = caption(target, inputs, outcome)
    outcome.draw(text, outdir / OUTPUTS["png"], outdir / OUTPUTS["pdf"])
    table = outcome.table.copy()
    if "dataset" not in table.columns:  # a target over several data sets names each row's
        table.insert(0, "dataset", inputs.used or "synthetic")
    table.insert(0, "target", target.id)
    write_table(table, outdir / OUTPUTS["table"], outdir / OUTPUTS["table_md"], text)
    rows = pd.DataFrame(outcome.claims, columns=CLAIM_COLUMNS)
    bad = [cid for cid in rows["id"] if not str(cid).startswith(f"{target.id}:")]
    if bad:
        raise ValueError(f"claim ids must read '{target.id}:<name>', got {bad}")
    rows["detail"] = rows["detail"] + f"; data: {inputs.data}"
    write_csv(outdir / OUTPUTS["claims"], rows)
    add_verdicts(outdir / OUTPUTS["png"], rows)
    write_json(outdir / OUTPUTS["provenance"], provenance.record(
        config=config, seeds={"seed": inputs.seed}, device=inputs.device, wall_s=time.perf_counter() - t0,
        data=data_checksums or {}, extra={"target": target.id, "caption": text, "runs": list(runs_read),
                                          "runs_sha256": {str(p): sha256_file(p) for p in [*runs_read, *analyses_read]},
                                          **outcome.extra}))
    return rows


def verdict_lines(rows: pd.DataFrame) -> list[tuple[str, str]]:
    """One line per claim (verdict, its reason where inconclusive, id, the claim and what was
    measured), with the verdict."""
    return [(f"{r.verdict.upper()}{f' ({r.reason})' if r.verdict == INCONCLUSIVE else ''}  {r.id}: {r.claim}  "
             f"[measured: {r.measured}]", r.verdict) for r in rows.itertuples()]


def add_verdicts(png: Path, rows: pd.DataFrame, dpi: int = 150) -> None:
    """Append the claims' verdicts under the figure in ``png`` (rewritten atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image = plt.imread(png)
    h, w = image.shape[:2]
    width_in = w / dpi
    chars = max(40, int(width_in * 72 / (6.5 * 0.6)))  # characters per line at 6.5 pt
    wrapped = [(line, verdict) for text, verdict in verdict_lines(rows)
               for line in textwrap.wrap(text, chars, subsequent_indent="    ")]
    line_in = 6.5 * 1.45 / 72
    extra_in = (len(wrapped) + 1.5) * line_in
    fig = plt.figure(figsize=(width_in, h / dpi + extra_in), dpi=dpi)
    frac = extra_in / (h / dpi + extra_in)
    ax = fig.add_axes((0, frac, 1, 1 - frac))
    ax.imshow(image)
    ax.axis("off")
    fig.text(0.01, frac - 0.3 * line_in / (h / dpi + extra_in), "Claims (verdicts from this build):",
             fontsize=6.5, weight="bold", va="top")
    for i, (line, verdict) in enumerate(wrapped):
        y = frac - (i + 1.3) * line_in / (h / dpi + extra_in)
        fig.text(0.01, y, line, fontsize=6.5, va="top", color=VERDICT_COLOURS[verdict])
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)


def verdict_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Claims per target and verdict (columns in VERDICTS order), with a total row."""
    target = table["id"].str.split(":", n=1).str[0].rename("target")
    counts = pd.crosstab(target, table["verdict"]).reindex(columns=list(VERDICTS), fill_value=0)
    counts.loc["all"] = counts.sum()
    return counts.reset_index()


def reason_counts(table: pd.DataFrame) -> pd.DataFrame:
    inconclusive = table[table["verdict"] == INCONCLUSIVE]
    return inconclusive["reason"].value_counts().rename_axis("reason").reset_index(name="inconclusive claims")


def gather_claims(paths, out_csv: Path, out_md: Path) -> pd.DataFrame:
    table = pd.concat([pd.read_csv(p, keep_default_na=False) for p in paths], ignore_index=True)
    write_csv(out_csv, table)
    n = table["verdict"].value_counts()
    head = ", ".join(f"{int(n.get(v, 0))} {v}" for v in VERDICTS)
    write_text(out_md, f"# Claims: {len(table)} ({head})\n\n## By target\n\n"
               + markdown_table(verdict_counts(table)) + "\n\n## Why inconclusive\n\n"
               + markdown_table(reason_counts(table)) + "\n\n## Every claim\n\n" + markdown_table(table))
    return table
