"""The Snakemake report of a small build: every target's figure (its claims' verdicts drawn
under it), caption, table and claims, and the claims table, in one self-contained zip."""

from __future__ import annotations

import json
import zipfile

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from deeptheory import report
from conftest import make_sources, snakemake
from test_audit import errors, run_audit
from test_workflow import tiny_config


def report_config(sources) -> dict:
    cfg = tiny_config(sources)
    cfg["profiles"]["tiny"]["targets"] = {"t3-err-vs-n": cfg["profiles"]["tiny"]["targets"]["t3-err-vs-n"]}
    return cfg


def report_items(html: str) -> dict:
    """The report's index of files: {path in results: entry (labels, caption, data_uri)}."""
    start = html.index("var results = {") + len("var results = ")
    return json.JSONDecoder().raw_decode(html, start)[0]


def test_the_report_holds_every_target_with_figure_caption_verdicts_table_and_claims(tmp_path):
    cfg = report_config(make_sources(tmp_path))
    built = snakemake(tmp_path, cfg, "--cores", "2")
    assert built.returncode == 0, built.stdout[-3000:]
    out = snakemake(tmp_path, cfg, "--report", "results/report.zip")
    assert out.returncode == 0, out.stdout[-3000:]

    with zipfile.ZipFile(tmp_path / "results" / "report.zip") as z:
        names = set(z.namelist())
        html = z.read("report/report.html").decode()
        items = report_items(html)
        targets = sorted(p.parent.name for p in (tmp_path / "results").glob("*/provenance.json"))
        assert targets == ["t3-err-vs-n", "t3-minnorm"]
        for tid in targets:
            results = tmp_path / "results" / tid
            for kind, name in [("figure", "figure.png"), ("claims", "claims.csv"), ("table", "table.csv")]:
                item = items[f"results/{tid}/{name}"]
                assert item["labels"] == {"target": tid, "file": kind}
                # The zip holds the file itself: the figure with its verdicts, the claims rows.
                assert z.read(f"report/{item['data_uri']}") == (results / name).read_bytes(), (tid, name)
            caption = items[f"results/{tid}/figure.png"]["caption"]
            claims = pd.read_csv(results / "claims.csv")
            assert tid in caption and "Claim:" in caption and "Verdicts" in caption and "Setup" in caption
            assert "Data set" in caption
            # The verdicts of the claims.csv in the report are those drawn under the figure.
            rows = pd.read_csv(z.open(f"report/{items[f'results/{tid}/claims.csv']['data_uri']}"))
            assert list(rows["held"]) == list(claims["held"]) and len(rows) > 0
        assert "cifar10" in items["results/t3-err-vs-n/figure.png"]["caption"]
        assert "synthetic, no data set" in items["results/t3-minnorm/figure.png"]["caption"]
        table = items["results/claims.csv"]
        assert f"report/{table['data_uri']}" in names
        gathered = pd.read_csv(z.open(f"report/{table['data_uri']}"))
        assert set(gathered["id"].str.split(":").str[0]) == set(targets)
    # The report beside the results is no stray file to the audit.
    rc, audited = run_audit(tmp_path)
    assert rc == 0, errors(audited)


@pytest.mark.parametrize("held", [[True, False], [False] * 6])
def test_verdicts_are_drawn_under_the_figure(tmp_path, held):
    png = tmp_path / "figure.png"
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1])
    fig.savefig(png, dpi=150)
    plt.close(fig)
    h0 = plt.imread(png).shape[0]
    rows = pd.DataFrame({"id": [f"t:c{i}" for i in range(len(held))], "claim": ["a claim " * 12] * len(held),
                         "held": held, "measured": ["x = 1"] * len(held), "detail": ["d"] * len(held)})
    lines = report.verdict_lines(rows)
    assert [line.split()[0] for line, _ in lines] == ["HELD" if h else "NOT" for h in held]
    report.add_verdicts(png, rows)
    image = plt.imread(png)
    assert image.shape[1] == 600 and image.shape[0] > h0 + len(held) * 15  # a line (or two) per claim
