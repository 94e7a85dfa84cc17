"""Tables as CSV (for machines) and Markdown (for readers), written atomically."""

from __future__ import annotations

import pandas as pd

from .atomic import write_csv, write_text


def markdown_table(frame: pd.DataFrame, floatfmt: str = "{:.4g}") -> str:
    def cell(v):
        return floatfmt.format(v) if isinstance(v, float) else str(v)
    head = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns) + "\n"
    return head + "".join("| " + " | ".join(cell(v) for v in row) + " |\n" for row in frame.itertuples(index=False))


def write_table(frame: pd.DataFrame, csv_path, md_path, caption: str) -> None:
    write_csv(csv_path, frame)
    write_text(md_path, f"**{caption}**\n\n" + markdown_table(frame))
