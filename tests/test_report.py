"""The Snakemake report of a small build: every target's figure (its claims' verdicts drawn
under it, and its PDF), caption, table, claims and provenance, and the claims table, in one
self-contained zip; every caption valid reStructuredText."""

from __future__ import annotations

import io
import json
import zipfile

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from docutils.core import publish_parts
from jinja2 import Environment

from deeptheory import grid, report
from deeptheory.targets import REGISTRY, caption
from conftest import ROOT, checkout_config, make_sources, snakemake
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
    assert "ERROR" not in out.stdout, out.stdout[-3000:]  # docutils' complaints about a caption

    with zipfile.ZipFile(tmp_path / "results" / "report.zip") as z:
        names = set(z.namelist())
        html = z.read("report/report.html").decode()
        items = report_items(html)
        targets = sorted(p.parent.name for p in (tmp_path / "results").glob("*/provenance.json"))
        assert targets == ["t3-err-vs-n", "t3-minnorm"]
        for tid in targets:
            results = tmp_path / "results" / tid
            for kind, name in [("figure", "figure.png"), ("claims", "claims.csv"), ("table", "table.csv"),
                               ("figure (pdf)", "figure.pdf"), ("provenance", "provenance.json")]:
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
            assert list(rows["verdict"]) == list(claims["verdict"]) and len(rows) > 0
        assert "cifar10" in items["results/t3-err-vs-n/figure.png"]["caption"]
        assert "synthetic, no data set" in items["results/t3-minnorm/figure.png"]["caption"]
        table = items["results/claims.csv"]
        assert f"report/{table['data_uri']}" in names
        gathered = pd.read_csv(z.open(f"report/{table['data_uri']}"))
        assert set(gathered["id"].str.split(":").str[0]) == set(targets)
        # Under "Build": where the time went, the figure and its table, with their caption.
        for name, kind in [("timeline.png", "timeline"), ("timeline.csv", "time per kind of job")]:
            item = items[f"results/{name}"]
            assert item["labels"] == {"file": kind} and "Where this build's time went" in item["caption"]
            assert z.read(f"report/{item['data_uri']}") == (tmp_path / "results" / name).read_bytes()
    # The report beside the results is no stray file to the audit.
    rc, audited = run_audit(tmp_path)
    assert rc == 0, errors(audited)


@pytest.mark.parametrize("verdicts", [["held", "refuted", "inconclusive"], ["refuted"] * 6])
def test_verdicts_are_drawn_under_the_figure(tmp_path, verdicts):
    png = tmp_path / "figure.png"
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1])
    fig.savefig(png, dpi=150)
    plt.close(fig)
    h0 = plt.imread(png).shape[0]
    n = len(verdicts)
    rows = pd.DataFrame({"id": [f"t:c{i}" for i in range(n)], "claim": ["a claim " * 12] * n, "verdict": verdicts,
                         "reason": ["within noise" if v == "inconclusive" else "" for v in verdicts],
                         "measured": ["x = 1"] * n, "detail": ["d"] * n})
    lines = report.verdict_lines(rows)
    assert [line.split()[0] for line, _ in lines] == [v.upper() for v in verdicts]
    assert [v for _, v in lines] == verdicts and all(v in report.VERDICT_COLOURS for v in verdicts)
    assert ("(within noise)" in lines[-1][0]) == (verdicts[-1] == "inconclusive")
    report.add_verdicts(png, rows)
    image = plt.imread(png)
    assert image.shape[1] == 600 and image.shape[0] > h0 + n * 15  # a line (or two) per claim


def test_the_claims_table_opens_with_counts_per_target_and_verdict(tmp_path):
    parts = []
    for tid, verdicts in {"t3-a": ["held", "refuted"], "t3-b": ["inconclusive", "inconclusive", "held"]}.items():
        path = tmp_path / f"{tid}.csv"
        pd.DataFrame({"id": [f"{tid}:c{i}" for i in range(len(verdicts))], "claim": "c", "verdict": verdicts,
                      "reason": ["within noise" if v == "inconclusive" else "" for v in verdicts],
                      "measured": "m", "detail": "d"}).to_csv(path, index=False)
        parts.append(path)
    table = report.gather_claims(parts, tmp_path / "claims.csv", tmp_path / "claims.md")
    md = (tmp_path / "claims.md").read_text()
    assert md.startswith("# Claims: 5 (2 held, 1 refuted, 2 inconclusive)")
    assert "| t3-a | 1 | 1 | 0 |" in md and "| t3-b | 1 | 0 | 2 |" in md and "| all | 2 | 1 | 2 |" in md
    assert "| within noise | 2 |" in md
    assert list(table["reason"]) == ["", "", "within noise", "within noise", ""]


# --- captions ------------------------------------------------------------------------------

REPORT = ROOT / "workflow" / "report"


def rst_problems(text: str) -> str:
    """What docutils prints (WARNING and up) while turning ``text`` into the report's HTML, as
    snakemake --report does: a |w| read as a substitution is an ERROR there."""
    stream = io.StringIO()
    publish_parts(text, writer="html", settings_overrides={"warning_stream": stream, "report_level": 2})
    return stream.getvalue()


def test_docutils_names_an_undefined_substitution():
    assert "Undefined substitution referenced" in rst_problems("slope |w_svm|")
    assert rst_problems(r"slope \|w_svm\|") == ""


# target.rst is a Jinja template: the test below renders it around each target's caption.
@pytest.mark.parametrize("name", sorted(p.name for p in REPORT.glob("*.rst") if p.name != "target.rst"))
def test_every_caption_file_is_valid_restructuredtext(name):
    assert rst_problems((REPORT / name).read_text()) == ""


def test_every_targets_caption_from_its_registry_entry_is_valid_restructuredtext():
    for tid, entry in REGISTRY.items():
        text = caption(entry)
        assert text.startswith(f"**{tid}** ({entry.source}): ") and f"Claim: {entry.claims}." in text, tid
        assert rst_problems(text) == "", tid


class _Job:
    """The part of Snakemake's job object a target's caption template reads."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


@pytest.mark.parametrize("profile", ["quick", "paper", "smoke"])
def test_every_targets_rendered_caption_is_valid_restructuredtext(profile):
    # The caption as the report renders it: workflow/report/target.rst around the target's
    # caption (deeptheory.targets.caption) and its config entry, through Jinja with Snakemake's settings, then docutils.
    config = checkout_config("offline.yaml", *(["smoke.yaml"] if profile == "smoke" else []), profile=profile)
    plan = grid.plan(config)
    template = Environment(trim_blocks=True, lstrip_blocks=True).from_string((REPORT / "target.rst").read_text())
    for tid, tcfg in plan.targets.items():
        params = _Job(caption=caption(REGISTRY[tid]), target_cfg=tcfg, requested=tcfg.get("dataset"),
                      used=grid.dataset_used(tcfg, config.get("substitute"), config["datasets"])
                      if tcfg.get("dataset") else None)
        text = template.render(snakemake=_Job(params=params, config=config, wildcards=_Job(target=tid)))
        assert tid in text and rst_problems(text) == "", tid
