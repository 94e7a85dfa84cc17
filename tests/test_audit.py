"""deeptheory audit on a small real build: clean, then with each kind of file tampered.

One build (module fixture); every test audits its own copy of it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import ROOT, checkout_config, make_sources, snakemake
from deeptheory import audit, manifest, runio
from deeptheory.atomic import write_csv, write_json
from test_workflow import tiny_config

N30 = "results/runs/cifar10/allconv5_w2_N30_natural_i1_s0_zero"


def small_config(sources: Path) -> dict:
    """Two data-set targets on two data sets (no shared runs) and one synthetic target."""
    cfg = tiny_config(sources)
    targets = cfg["profiles"]["tiny"]["targets"]
    cfg["profiles"]["tiny"]["targets"] = {
        "t3-err-vs-n": targets["t3-err-vs-n"],
        "m100-err-vs-neurons": {**targets["m100-err-vs-neurons"], "widths": [1]}}
    return cfg


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("audited")
    cfg = small_config(make_sources(workdir))
    result = snakemake(workdir, cfg, "--cores", "2")
    assert result.returncode == 0, result.stdout[-4000:]
    return workdir


@pytest.fixture
def copy(build, tmp_path):
    """A private copy of the build to tamper with."""
    dst = tmp_path / "build"
    shutil.copytree(build, dst, symlinks=True)
    return dst


def run_audit(workdir: Path, *configfiles: Path, own_config: bool = False) -> tuple[int, dict]:
    """The audit's JSON; by default with the config file the build was run with (own_config:
    none, the build folder's config/config.yaml alone)."""
    args = ["--directory", str(workdir), "--json"]
    for c in configfiles or (() if own_config else (workdir / "config.yaml",)):
        args += ["--configfile", str(c)]
    out = subprocess.run([sys.executable, "-m", "deeptheory.audit", *args], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
    return out.returncode, json.loads(out.stdout)


def errors(report: dict) -> list[dict]:
    return [p for p in report["problems"] if p["severity"] == "error"]


def named(report: dict, path: str) -> list[dict]:
    return [p for p in errors(report) if p["path"] == path]


def test_a_clean_build_audits_clean(build):
    rc, report = run_audit(build)
    assert rc == 0 and report["ok"], report
    assert errors(report) == []
    assert report["summary"]["checked"]["results files"] >= 29 and report["summary"]["targets"] == 3
    # Every result file is in a manifest, checkpoints are not.
    assert manifest.read(build / N30).keys() == {"metrics.csv", "model.pt", "provenance.json"}
    assert not list((build / "results").rglob("checkpoints/.manifest.json"))


def test_the_text_printout_has_one_row_per_problem_and_a_summary(copy):
    (copy / "results" / "t3-minnorm" / "figure.png").write_bytes(b"not a figure")
    out = subprocess.run([sys.executable, "-m", "deeptheory.audit", "-d", str(copy), "--configfile",
                          str(copy / "config.yaml")], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
    assert out.returncode == 1
    assert "ERROR  modified  results/t3-minnorm/figure.png" in out.stdout
    assert "affects: t3-minnorm" in out.stdout
    assert "FAILED: 1 error(s)" in out.stdout.splitlines()[-1]


def test_a_replaced_raw_archive_is_named_with_the_targets_it_feeds(copy):
    archive = copy / "data" / "raw" / "cifar10" / "cifar-10-python.tar.gz"
    archive.write_bytes(b"other bytes")
    rc, report = run_audit(copy)
    assert rc == 1
    [p] = named(report, "data/raw/cifar10/cifar-10-python.tar.gz")
    assert p["kind"] == "raw-data" and "datasets.cifar10.files.cifar-10-python.tar.gz.md5" in p["detail"]
    assert p["affects"] == ["t3-err-vs-n", "claims table"]  # not m100-err-vs-neurons (fashion-mnist)


def test_a_changed_run_metrics_file_is_named_with_its_targets(copy):
    metrics = copy / N30 / "metrics.csv"
    frame = pd.read_csv(metrics)
    frame.loc[frame.index[-1], "test_err"] = 0.0
    frame.to_csv(metrics, index=False)  # behind the build's back: no manifest update
    rc, report = run_audit(copy)
    assert rc == 1
    [p] = named(report, f"{N30}/metrics.csv")
    assert p["kind"] == "modified" and p["affects"] == ["t3-err-vs-n", "claims table"]
    # ... and the target that read it is stale.
    stale = named(report, "results/t3-err-vs-n/provenance.json")
    assert stale and "changed since the target was built" in stale[0]["detail"]


def test_a_changed_target_figure_is_named(copy):
    (copy / "results" / "t3-err-vs-n" / "figure.png").write_bytes(b"\x89PNG other")
    rc, report = run_audit(copy)
    assert rc == 1
    assert [(p["kind"], p["affects"]) for p in errors(report)] == [("modified", ["t3-err-vs-n"])]


def flip_verdicts(path, tid):
    """Every verdict of ``tid``'s rows in a claims table turned (held <-> not held)."""
    table = pd.read_csv(path, keep_default_na=False)
    mine = table["id"].str.startswith(f"{tid}:")
    table.loc[mine, "verdict"] = table.loc[mine, "verdict"].map(lambda v: "refuted" if v == "held" else "held")
    table.to_csv(path, index=False)


def test_changed_claims_are_named(copy):
    flip_verdicts(copy / "results" / "claims.csv", "t3-err-vs-n")
    flip_verdicts(copy / "results" / "m100-err-vs-neurons" / "claims.csv", "m100-err-vs-neurons")
    rc, report = run_audit(copy)
    assert rc == 1
    table_rows = {p["kind"]: p for p in named(report, "results/claims.csv")}
    assert table_rows["modified"]["affects"] == ["claims table"]
    # Its rows of t3-err-vs-n no longer match that target's own claims.
    assert "rows of t3-err-vs-n differ" in table_rows["stale"]["detail"]
    [p] = named(report, "results/m100-err-vs-neurons/claims.csv")
    assert p["kind"] == "modified" and p["affects"] == ["m100-err-vs-neurons", "claims table"]


def test_a_retrained_run_makes_the_targets_that_read_it_stale(copy):
    metrics = copy / N30 / "metrics.csv"
    frame = pd.read_csv(metrics)
    frame["wall_s"] = frame["wall_s"] + 1.0
    write_csv(metrics, frame)  # as a retraining writes it: the manifest is up to date
    rc, report = run_audit(copy)
    assert rc == 1
    assert not named(report, f"{N30}/metrics.csv")
    [p] = errors(report)
    assert p["kind"] == "stale" and p["path"] == "results/t3-err-vs-n/provenance.json"
    assert "allconv5_w2_N30" in p["detail"] and p["affects"] == ["t3-err-vs-n", "claims table"]


def test_a_changed_config_value_names_the_runs_and_targets_it_concerns(copy, tmp_path):
    override = tmp_path / "override.yaml"
    override.write_text(yaml.safe_dump({"profiles": {"tiny": {
        "train": {"lr": 0.1}, "synthetic": {"t3-minnorm": {"n": 5, "d": 12, "steps": 3000, "batch": 1}}}}}))
    rc, report = run_audit(copy, copy / "config.yaml", override)
    assert rc == 1
    runs = [p for p in errors(report) if p["kind"] == "config"]
    assert len(runs) == 3 and all("profiles.tiny.train.lr" in p["detail"] and "0.05 -> 0.1" in p["detail"]
                                  for p in runs)
    assert {a for p in runs for a in p["affects"]} == {"t3-err-vs-n", "m100-err-vs-neurons", "claims table"}
    [p] = named(report, "results/t3-minnorm/provenance.json")
    assert "profiles.tiny.synthetic.t3-minnorm.steps: 2000 -> 3000" in p["detail"]
    # A grid value: the target's runs no longer match.
    override.write_text(yaml.safe_dump({"profiles": {"tiny": {"targets": {"t3-err-vs-n": {"N": [30, 90]}}}}}))
    rc, report = run_audit(copy, copy / "config.yaml", override)
    details = " ".join(p["detail"] for p in named(report, "results/t3-err-vs-n/provenance.json"))
    assert "reads runs it no longer names: cifar10/allconv5_w2_N60" in details
    assert "lacks runs it now names: cifar10/allconv5_w2_N90" in details


def test_unknown_missing_and_half_written_files_are_named(copy):
    (copy / "results" / "t3-err-vs-n" / "notes.txt").write_text("mine")
    (copy / N30 / ".metrics.csv.abc.tmp").write_text("epoch,tr")
    (copy / "results" / "m100-err-vs-neurons" / "table.md").unlink()
    (copy / "results" / "checkpoints").mkdir(exist_ok=True)
    (copy / "results" / "checkpoints" / "x.pt").write_bytes(b"working state")  # ignored
    (copy / "results" / ".snakemake_timestamp").touch()                          # ignored
    rc, report = run_audit(copy)
    assert rc == 1
    by_path = {p["path"]: p for p in errors(report)}
    assert set(by_path) == {"results/t3-err-vs-n/notes.txt", f"{N30}/.metrics.csv.abc.tmp",
                            "results/m100-err-vs-neurons/table.md"}
    assert by_path["results/t3-err-vs-n/notes.txt"]["kind"] == "unknown"
    assert by_path[f"{N30}/.metrics.csv.abc.tmp"]["affects"] == ["t3-err-vs-n", "claims table"]
    assert by_path["results/m100-err-vs-neurons/table.md"]["kind"] == "missing"


def test_another_code_revision_is_a_note_with_the_files_changed(copy):
    prov_path = copy / N30 / "provenance.json"
    prov = json.loads(prov_path.read_text())
    old = subprocess.run(["git", "rev-list", "--max-parents=0", "HEAD"], cwd=ROOT, capture_output=True,
                         text=True).stdout.split()[0]
    prov["code"] = {"commit": old, "dirty": False}
    write_json(prov_path, prov)
    rc, report = run_audit(copy)
    assert rc == 0, errors(report)
    [note] = [p for p in report["problems"] if p["kind"] == "code" and old[:12] in p["detail"]]
    assert note["severity"] == "note" and "src/deeptheory/audit.py" in note["detail"]
    assert note["affects"] == ["t3-err-vs-n", "claims table"]


def test_link_run_records_the_linked_files(tmp_path):
    src, dst = tmp_path / "results" / "packs" / "p" / "r", tmp_path / "results" / "runs" / "d" / "r"
    for name in ("metrics.csv", "model.pt", "provenance.json"):
        write_json(src / name, {"name": name})
    runio.link_run(src, dst)
    assert manifest.read(dst) and {k: v["sha256"] for k, v in manifest.read(dst).items()} == {
        k: v["sha256"] for k, v in manifest.read(src).items()}


def test_a_replaced_archive_stops_the_workflow_at_start(copy):
    """After a complete build: replacing an archive is caught before any job, every start."""
    cfg = yaml.safe_load((copy / "config.yaml").read_text())
    assert "Nothing to be done" in snakemake(copy, cfg, "-n").stdout
    archive = copy / "data" / "raw" / "cifar10" / "cifar-10-python.tar.gz"
    expected = cfg["datasets"]["cifar10"]["files"]["cifar-10-python.tar.gz"]["md5"]
    archive.write_bytes(b"other bytes of the same name")
    for args in (["-n"], ["--cores", "1"]):
        out = snakemake(copy, cfg, *args)
        assert out.returncode != 0
        assert "checksum mismatch for cifar-10-python.tar.gz" in out.stdout
        assert f"expected {expected}, actual " in out.stdout and "datasets.cifar10.files.cifar-10-python.tar.gz.md5" \
            in out.stdout
        assert "Nothing to be done" not in out.stdout and "Building DAG" not in out.stdout


def test_files_of_packs_runs_and_targets_affect_the_right_targets(tmp_path):
    cfg = small_config(make_sources(tmp_path))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    a = audit.Audit(tmp_path, audit.load_config([tmp_path / "config.yaml"]))
    run = "cifar10/allconv5_w2_N60_natural_i1_s0_zero"
    assert a.path_affects(tmp_path / "results" / "packs" / "cifar10" / "allconv5_w2_b32" / "all" / run / "model.pt") == [
        "t3-err-vs-n", "claims table"]
    assert a.path_affects(tmp_path / "results" / "runs" / run / "metrics.csv") == ["t3-err-vs-n", "claims table"]
    assert a.path_affects(tmp_path / "results" / "t3-minnorm" / "table.md") == ["t3-minnorm"]
    assert a.dataset_affects("fashion-mnist") == ["m100-err-vs-neurons", "claims table"]


def test_a_changed_setting_names_the_config_key_the_plan_read_it_from(tmp_path):
    """The plan records the key that set each spec field: a recipe's own setting names the
    recipe's key, an eK stop rule's epoch cap the (further) grid's stop key, and a field no
    key sets (a code default) names none."""
    cfg = checkout_config(profile="quick")
    gen = cfg["profiles"]["quick"]["targets"]["t3-gen-vs-w"]
    gen["grids"] = [{"widths": [2], "N": [500], "stop": "e40"}]
    a = audit.Audit(tmp_path, cfg)
    zhang = next(s for s in a.plan.runs_of("t3-archs") if s.recipe == "zhang")
    plain = next(s for s in a.plan.runs_of("t3-gen-vs-w") if s.max_epochs == 30)
    e40 = next(s for s in a.plan.runs_of("t3-gen-vs-w") if s.max_epochs == 40)
    for spec, change in ((zhang, {"lr": 1.0, "momentum": 0.5}), (e40, {"max_epochs": 41}),
                         (plain, {"max_epochs": 31, "weight_decay": 0.5})):
        write_json(tmp_path / "results" / "runs" / spec.run_id / "provenance.json",
                   {"run_id": spec.run_id, "config": {"spec": {**spec.to_dict(), **change}}})
    a.check_runs()
    detail = {p.path.split("/")[3]: p.detail for p in a.problems if p.kind == "config"}
    assert "lr 1.0 -> 0.05 (config key profiles.quick.recipes.zhang.lr)" in detail[zhang.run_id.split("/")[1]]
    assert "momentum 0.5 -> 0.9 (config key profiles.quick.train.momentum)" in detail[zhang.run_id.split("/")[1]]
    assert "max_epochs 41 -> 40 (config key profiles.quick.targets.t3-gen-vs-w.grids[0].stop)" in detail[
        e40.run_id.split("/")[1]]
    assert ("max_epochs 31 -> 30 (config key profiles.quick.targets.t3-gen-vs-w.stop); weight_decay 0.5 -> 0.0"
            in detail[plain.run_id.split("/")[1]])
    assert "weight_decay 0.5 -> 0.0 (" not in detail[plain.run_id.split("/")[1]]


@pytest.mark.parametrize("mask", [0o002, 0o022])
def test_written_files_and_their_manifest_follow_the_umask(tmp_path, mask):
    # mkstemp makes every file 0600: in a shared group folder nobody else could read results.
    old = os.umask(mask)
    try:
        target = tmp_path / "results" / "t3-err-vs-n"
        write_json(target / "provenance.json", {"target": "t3-err-vs-n"})
        write_csv(target / "table.csv", pd.DataFrame({"N": [30]}))
    finally:
        os.umask(old)
    for name in ["provenance.json", "table.csv", manifest.NAME]:
        assert (target / name).stat().st_mode & 0o777 == 0o666 & ~mask, name


def test_the_audit_reads_the_config_of_the_build_folder_as_run(copy):
    # It read the library checkout's config/config.yaml: an edited build folder audited OK.
    base = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    built = audit.configcheck.merge(base, yaml.safe_load((copy / "config.yaml").read_text()))
    (copy / "config").mkdir()
    (copy / "config" / "config.yaml").write_text(yaml.safe_dump(built))
    rc, report = run_audit(copy, own_config=True)
    assert rc == 0, errors(report)
    assert report["summary"]["config"] == [str(copy / "config" / "config.yaml")]
    built["profiles"]["tiny"]["train"]["lr"] = 0.1  # Snakemake would retrain every run
    (copy / "config" / "config.yaml").write_text(yaml.safe_dump(built))
    rc, report = run_audit(copy, own_config=True)
    stale = [p for p in errors(report) if p["kind"] == "config"]
    assert rc == 1 and len(stale) == 3 and all("lr 0.05 -> 0.1" in p["detail"] for p in stale)
    # --config as given to snakemake (`--config profile=paper device=cuda`): audited as asked.
    out = subprocess.run([sys.executable, "-m", "deeptheory.audit", "-d", str(copy), "--config", "profile=quick",
                          "device=cpu"], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
    quick = len(base["profiles"]["quick"]["targets"]) + len(base["profiles"]["quick"]["synthetic"])
    assert out.returncode == 1 and f"of {quick} targets built" in out.stdout.splitlines()[-1]
    assert f"config: {copy / 'config' / 'config.yaml'} + --config profile=quick device=cpu" in out.stdout


def test_a_missing_folder_a_deleted_target_and_a_half_build_are_errors(copy):
    out = subprocess.run([sys.executable, "-m", "deeptheory.audit", "-d", str(copy / "nonexistent")],
                         capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
    assert out.returncode == 2 and f"no build folder {copy / 'nonexistent'}" in out.stderr
    shutil.rmtree(copy / "results" / "t3-minnorm")  # its rows stay in results/claims.csv
    shutil.rmtree(copy / N30)  # a killed build: a run never made
    rc, report = run_audit(copy)
    assert rc == 1 and report["summary"]["targets"] == 2 and report["summary"]["targets_asked"] == 3
    [gone] = named(report, "results/t3-minnorm")
    assert "target t3-minnorm: the config asks for figure.png" in gone["detail"]
    [claims] = named(report, "results/claims.csv")
    assert "holds claims of t3-minnorm, whose target folder results/t3-minnorm/ has no provenance" in claims["detail"]
    [run] = named(report, N30)
    assert "run cifar10/allconv5_w2_N30_natural_i1_s0_zero: the config asks for metrics.csv, model.pt" in run["detail"]
    assert run["affects"] == ["t3-err-vs-n", "claims table"]
