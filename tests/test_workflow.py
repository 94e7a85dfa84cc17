"""The whole DAG on tiny generated archives, in a temporary directory."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import ROOT, snakemake, write_cifar_set, write_idx_set
from deeptheory import fetch



def tiny_config(sources: Path, n_grid=(30, 60)) -> dict:
    target = {"model": "allconv5", "widths": [2], "N": list(n_grid)}
    return {
        "profile": "tiny",
        "device": "cpu",
        "datasets": {
            "cifar10": {"format": "cifar10-python", "source": str(sources / "cifar"),
                        "files": json.loads((sources / "cifar.json").read_text())},
            "fashion-mnist": {"format": "idx", "source": str(sources / "fmnist"),
                              "files": json.loads((sources / "fmnist.json").read_text())},
        },
        "substitute": {"mnist": "fashion-mnist"},
        "profiles": {"tiny": {
            "seeds": [0], "label_seed": 0, "n_test": 40,
            "train": {"lr": 0.05, "momentum": 0.9, "batch_size": 32, "max_epochs": 3, "eval_every": 1},
            "targets": {
                "t3-err-vs-n": {"dataset": "cifar10", "labels": "natural", **target},
                "t3-err-vs-n-random": {"dataset": "cifar10", "labels": "random", **target},
                "t3-err-vs-w": {"dataset": "mnist", "model": "allconv5", "widths": [1, 2], "N": [60],
                                "labels": "natural"},
                "m100-err-vs-neurons": {"dataset": "fashion-mnist", "model": "cnn5", "widths": [1, 2],
                                        "N": [60], "labels": "natural"},
                # Targets that analyse trained nets (rule analyze): a unit of three minimizers, and
                # units of one run over two asked data sets; SGD vs SGDL from metrics.
                "t3-landscape": {"dataset": "cifar10", "model": "allconv5", "widths": [2], "N": [30],
                                 "labels": ["natural", "random"], "minimizers": 3, "analysis": {"grid": 5}},
                "t3-flatness": {"dataset": ["cifar10", "mnist"], "model": "allconv5", "widths": [2], "N": [30],
                                "labels": ["natural", "random"],
                                "analysis": {"directions": 2, "epsilon": 0.05, "r_max": 100.0, "r_tol": 0.01}},
                "t3-sgdl": {"dataset": "cifar10", "model": "allconv5", "widths": [2], "N": [60], "labels": "natural",
                            "noise": [0.0, 0.001], "stop": "e3"},
            },
            "synthetic": {"t3-minnorm": {"n": 5, "d": 12, "steps": 2000, "batch": 1}},
        }},
    }


def job_counts(output: str) -> dict[str, int]:
    """Parse the 'Job stats' table of a (dry) run."""
    if "Job stats:" not in output:
        return {}
    counts, table = {}, output.split("Job stats:", 1)[1]
    for line in table.splitlines()[3:]:
        m = re.match(r"^(\S+)\s+(\d+)$", line.strip())
        if not m:
            break
        counts[m[1]] = int(m[2])
    return counts


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("dag")
    sources = workdir / "sources"
    (sources / "fmnist.json").parent.mkdir(parents=True)
    (sources / "fmnist.json").write_text(json.dumps(write_idx_set(sources / "fmnist", n_train=120, n_test=60)))
    (sources / "cifar.json").write_text(json.dumps(write_cifar_set(sources / "cifar", n_train=120, n_test=60)))
    result = snakemake(workdir, tiny_config(sources), "--cores", "2")
    assert result.returncode == 0, result.stdout[-4000:]
    return workdir, sources, result


def test_dag_builds_every_target_with_claims_and_provenance(built):
    workdir, _, result = built
    targets = ["t3-err-vs-n", "t3-err-vs-n-random", "t3-err-vs-w", "m100-err-vs-neurons", "t3-minnorm",
               "t3-landscape", "t3-flatness", "t3-sgdl"]
    for t in targets:
        for name in ["figure.png", "figure.pdf", "table.csv", "table.md", "claims.csv"]:
            assert (workdir / "results" / t / name).stat().st_size > 0, (t, name)
    claims = pd.read_csv(workdir / "results" / "claims.csv")
    assert list(claims.columns) == ["id", "claim", "verdict", "reason", "measured", "detail"]
    assert set(claims["id"].str.split(":").str[0]) == set(targets)
    assert set(claims["verdict"]) <= {"held", "refuted", "inconclusive"}
    assert (claims["reason"].notna() == (claims["verdict"] == "inconclusive")).all()  # a reason exactly where one is due
    assert claims["detail"].str.contains("fashion-mnist").any()  # offline stand-in is named
    table = pd.read_csv(workdir / "results" / "t3-err-vs-w" / "table.csv")
    assert set(table["dataset"]) == {"fashion-mnist"}  # mnist was substituted

    runs = sorted((workdir / "results" / "runs").glob("*/*/provenance.json"))
    # 2 + 2 + 2 + 2 for the sweeps; t3-landscape adds 4 minimizers to the N = 30 runs it shares
    # with the N sweeps, t3-flatness 2 on mnist's stand-in, t3-sgdl 2 (30 epochs: none shared).
    assert len(runs) == 8 + 4 + 2 + 2
    units = sorted(p.relative_to(workdir / "results" / "analyses") for p in
                   (workdir / "results" / "analyses").rglob("*.csv"))
    assert [str(u) for u in units if u.parts[0] == "t3-landscape"] == [
        "t3-landscape/cifar10/allconv5_w2_N30_natural_i1_s0_zero.csv",
        "t3-landscape/cifar10/allconv5_w2_N30_random_i1_s0_zero.csv"]
    assert len([u for u in units if u.parts[0] == "t3-flatness"]) == 4
    assert set(pd.read_csv(workdir / "results" / "t3-flatness" / "table.csv")["dataset"]) == {"cifar10",
                                                                                               "fashion-mnist"}
    prov = json.loads(runs[0].read_text())
    for key in ["config", "seeds", "code", "data", "versions", "device", "wall_s"]:
        assert key in prov
    assert prov["versions"]["torch"] and prov["data"]
    metrics = pd.read_csv(runs[0].with_name("metrics.csv"))
    assert metrics["final"].iloc[-1] and len(metrics) == metrics["epoch"].iloc[-1]
    # Data came through DVC, which recorded the checksum beside each archive.
    assert (workdir / "data" / "raw" / "cifar10" / "cifar-10-python.tar.gz.dvc").exists()
    # Progress is in the job logs.
    log = next((workdir / "logs" / "train").rglob("*.log")).read_text()
    assert re.search(r"epoch 1/3 +loss [0-9.]+ +train err [0-9.]+ +test err [0-9.]+", log)
    # Every result follows the umask (mkstemp's 0600 kept the group of a shared folder out).
    mask = os.umask(0o022)
    os.umask(mask)
    assert {p.stat().st_mode & 0o777 for p in (workdir / "results").rglob("*") if p.is_file()} == {0o666 & ~mask}


def test_changing_one_grid_value_reruns_only_what_depends_on_it(built):
    workdir, sources, _ = built
    assert job_counts(snakemake(workdir, tiny_config(sources), "-n").stdout) == {}
    dry = snakemake(workdir, tiny_config(sources, n_grid=(30, 90)), "-n")
    assert dry.returncode == 0, dry.stdout[-3000:]
    # N=90 is new for both N sweeps; the W and neuron sweeps do not change.
    assert job_counts(dry.stdout) == {"train": 2, "target": 2, "claims": 1, "timeline": 1, "all": 1, "total": 7}
    assert "results/t3-err-vs-n/figure.png" in dry.stdout and "results/t3-err-vs-n-random/figure.png" in dry.stdout


def test_the_timeline_comes_last_and_drawing_it_again_reruns_nothing_else(built):
    from deeptheory import timeline

    workdir, sources, _ = built
    jobs = timeline.read_jobs(workdir)
    drawn = timeline.snakemake_records(workdir)["logs/timeline.log"]
    assert drawn["starttime"] >= jobs["end"].max()  # it started once every job it shows had ended
    breakdown = pd.read_csv(workdir / "results" / "timeline.csv").set_index("kind")
    assert {"fetch", "decode", "train", "analyze", "target", "claims", "all"} <= set(breakdown.index)
    assert "timeline" not in breakdown.index  # its own job is not part of the build it draws
    assert breakdown.at["all", "jobs"] == breakdown["jobs"].drop("all").sum() == \
        len(list((workdir / "benchmarks").rglob("*.tsv"))) - 1
    assert breakdown.at["all", "critical_s"] > 0  # Snakemake's records gave the DAG's edges
    assert (workdir / "results" / "timeline.png").stat().st_size > 0
    again = snakemake(workdir, tiny_config(sources), "-n", "--forcerun", "timeline")
    assert job_counts(again.stdout) == {"timeline": 1, "all": 1, "total": 2}, again.stdout[-3000:]


def test_config_errors_name_the_key(built):
    workdir, sources, _ = built
    cfg = tiny_config(sources)
    cfg["profiles"]["tiny"]["train"]["lr"] = "fast"
    bad = snakemake(workdir, cfg, "-n")
    assert bad.returncode != 0 and "lr" in bad.stdout and "fast" in bad.stdout
    cfg = tiny_config(sources)
    cfg["profile"] = "huge"
    bad = snakemake(workdir, cfg, "-n")
    assert bad.returncode != 0 and "config key 'profile'" in bad.stdout


def test_bad_checksum_stops_the_dag_before_training(tmp_path):
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "fmnist.json").write_text(json.dumps(write_idx_set(sources / "fmnist", n_train=60, n_test=20)))
    (sources / "cifar.json").write_text(json.dumps({"cifar-10-python.tar.gz": {"md5": "0" * 32}}))
    write_cifar_set(sources / "cifar", n_train=20, n_test=10)
    cfg = tiny_config(sources)
    cfg["profiles"]["tiny"]["targets"] = {k: v for k, v in cfg["profiles"]["tiny"]["targets"].items()
                                          if k == "t3-err-vs-n"}
    result = snakemake(tmp_path, cfg, "--cores", "1")
    assert result.returncode != 0
    assert "checksum mismatch for cifar-10-python.tar.gz" in result.stdout
    assert "datasets.cifar10.files.cifar-10-python.tar.gz.md5" in result.stdout
    assert not (tmp_path / "results" / "runs").exists()


def test_a_deleted_run_file_or_folder_is_rebuilt_by_a_plain_build(built):
    workdir, sources, _ = built
    run = workdir / "results" / "runs" / "cifar10" / "allconv5_w2_N30_natural_i1_s0_zero"
    aside = workdir / "aside"
    # Snakemake rebuilds a missing intermediate only for a job that must run: rule all names
    # every run's files, so the default build restores them (and rebuilds what reads them).
    os.rename(run, aside)  # renamed, not deleted: the module's later tests read this build
    try:
        for missing in [["metrics.csv"], ["metrics.csv", "model.pt", "provenance.json"]]:
            run.mkdir()
            for name in ["metrics.csv", "model.pt", "provenance.json"]:
                if name not in missing:
                    os.link(aside / name, run / name)
            dry = snakemake(workdir, tiny_config(sources), "-n")
            counts = job_counts(dry.stdout)
            assert counts.get("train") == 1 and counts.get("target", 0) >= 1, dry.stdout[-3000:]
            assert "results/t3-err-vs-n/figure.png" in dry.stdout
            shutil.rmtree(run)
    finally:
        shutil.rmtree(run, ignore_errors=True)
        os.rename(aside, run)
    assert job_counts(snakemake(workdir, tiny_config(sources), "-n").stdout) == {}


def test_a_build_killed_mid_job_reruns_its_incomplete_outputs_without_a_flag(built):
    """kill -9 leaves Snakemake's incomplete marker on outputs that exist (a target half
    written, a pack folder); the workflow's default profile reruns them, no flag needed."""
    workdir, sources, _ = built
    figure = "results/t3-err-vs-n/figure.png"
    marker = workdir / ".snakemake" / "incomplete" / base64.urlsafe_b64encode(figure.encode()).decode()
    marker.write_text(json.dumps({"external_jobid": None}))  # as Snakemake marks a job it started
    try:
        dry = snakemake(workdir, tiny_config(sources), "-n")
        assert "IncompleteFilesException" not in dry.stdout, dry.stdout[-3000:]
        assert job_counts(dry.stdout).get("target") == 1, dry.stdout[-3000:]
        assert "profiles/default" in dry.stdout
        # Without the profile, Snakemake stops: the failure the profile removes.
        bare = snakemake(workdir, tiny_config(sources), "-n", "--workflow-profile", "none")
        assert bare.returncode != 0 and "IncompleteFilesException" in bare.stdout
    finally:
        marker.unlink()


def test_a_changed_archive_stops_the_start_and_the_audit_until_one_command_refetches_it(built):
    from test_audit import errors, run_audit

    workdir, sources, _ = built
    raw = workdir / "data" / "raw" / "fashion-mnist"
    archive = raw / "train-labels-idx1-ubyte.gz"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the gzip payload: it no longer decompresses
    archive.write_bytes(bytes(data))
    (raw / "verified.json").unlink()  # the old advice: it must not hide the changed archive
    for stopped in [snakemake(workdir, tiny_config(sources), "-n"),
                    snakemake(workdir, tiny_config(sources), "-n", "results/t3-err-vs-w/figure.png")]:
        assert stopped.returncode != 0 and "Traceback" not in stopped.stdout, stopped.stdout[-3000:]
        assert "data/raw/fashion-mnist/train-labels-idx1-ubyte.gz" in stopped.stdout
        assert "datasets.fashion-mnist.files.train-labels-idx1-ubyte.gz.md5" in stopped.stdout
        assert fetch.refetch_command("fashion-mnist") in stopped.stdout
    rc, report = run_audit(workdir)
    assert rc != 0 and any(p["path"].endswith("train-labels-idx1-ubyte.gz") for p in errors(report)), report
    # The one command: fetch and verify again; the archive matches, so nothing else reruns.
    fixed = snakemake(workdir, tiny_config(sources), *fetch.refetch_command("fashion-mnist").split()[1:])
    assert fixed.returncode == 0, fixed.stdout[-3000:]
    assert job_counts(fixed.stdout) == {"fetch_dataset": 1, "total": 1}
    assert job_counts(snakemake(workdir, tiny_config(sources), "-n").stdout) == {}
    rc, report = run_audit(workdir)
    assert not [p for p in errors(report) if p["kind"] == "raw-data"], errors(report)


def test_workflow_lints_clean():
    out = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and "good condition" in out.stdout + out.stderr, out.stdout + out.stderr


def packed_config(sources, n_grid=(30, 60)) -> dict:
    """t3-err-vs-n (width 2, N in n_grid) and t3-err-vs-w (widths 2, 3 at N = 60), packed:
    the two targets share the run of width 2 at N = 60."""
    cfg = tiny_config(sources, n_grid)
    tiny = cfg["profiles"]["tiny"]
    tiny.update(pack=True, targets={"t3-err-vs-n": tiny["targets"]["t3-err-vs-n"],
                                    "t3-err-vs-w": {"dataset": "cifar10", "model": "allconv5", "widths": [2, 3],
                                                    "N": [60], "labels": "natural"}})
    tiny.pop("synthetic")
    return cfg


def trained(workdir: Path) -> list[str]:
    """The run names of results/runs/, in order."""
    return sorted(p.parent.name for p in (workdir / "results" / "runs").glob("*/*/provenance.json"))


def pack_log(workdir: Path, job: str) -> str:
    return (workdir / "logs" / "train" / f"{job}.pack.log").read_text()


def test_packed_mode_trains_only_the_asked_targets_runs_in_one_job_per_architecture(built, tmp_path):
    workdir, sources, _ = built
    n30, n60 = "allconv5_w2_N30_natural_i1_s0_zero", "allconv5_w2_N60_natural_i1_s0_zero"
    w3 = "allconv5_w3_N60_natural_i1_s0_zero"
    # One target asked for: only its runs train, one job per architecture; the run it
    # shares with t3-err-vs-n trains in a pack of t3-err-vs-w's runs alone.
    result = snakemake(tmp_path, packed_config(sources), "results/t3-err-vs-w/figure.png", "--cores", "1")
    assert result.returncode == 0, result.stdout[-3000:]
    counts = job_counts(result.stdout)
    assert counts["train_pack"] == 2 and counts["run_from_pack"] == 2 and "train" not in counts
    assert trained(tmp_path) == [n60, w3]
    assert "1 runs, 1 to train" in pack_log(tmp_path, "cifar10/allconv5_w2_b32/t3-err-vs-w")
    assert "1 runs, 1 to train" in pack_log(tmp_path, "cifar10/allconv5_w3_b32/all")
    # Then everything: only the run not yet trained trains; t3-err-vs-w is not built again.
    result = snakemake(tmp_path, packed_config(sources), "--cores", "1")
    assert result.returncode == 0, result.stdout[-3000:]
    counts = job_counts(result.stdout)
    assert counts["train_pack"] == 1 and counts["run_from_pack"] == 1 and counts["target"] == 1, counts
    assert trained(tmp_path) == [n30, n60, w3]
    assert "2 runs, 1 to train" in pack_log(tmp_path, "cifar10/allconv5_w2_b32/all")
    assert not list((tmp_path / "results" / "checkpoints").rglob("*.pt"))  # dropped once linked out
    # The timeline counts each run's steps once, in the pack that trained it, not in one that
    # linked it in.
    from deeptheory import timeline

    rates = timeline.throughput(tmp_path, timeline.read_jobs(tmp_path)).set_index("job")
    assert rates["runs"].sum() == 3 and rates.at["cifar10/allconv5_w2_b32/all", "runs"] == 1, rates
    assert (rates["kind"] == "train_pack").all() and (rates["steps_per_s"] > 0).all()
    for run in [n30, n60]:  # the same numbers as the single-run path
        single = pd.read_csv(workdir / "results" / "runs" / "cifar10" / run / "metrics.csv")
        packed = pd.read_csv(tmp_path / "results" / "runs" / "cifar10" / run / "metrics.csv")
        assert list(packed["epoch"]) == list(single["epoch"])
        assert packed["train_loss"].to_numpy() == pytest.approx(single["train_loss"].to_numpy(), rel=1e-4)
    # Built: asking again, for everything or for one target, does nothing.
    for asked in [(), ("results/t3-err-vs-w/figure.png",)]:
        again = snakemake(tmp_path, packed_config(sources), *asked, "-n")
        assert "Nothing to be done" in again.stdout, again.stdout[-3000:]
    # Snakemake knows every file the packs wrote: each run's files and the packs' folders.
    summary = snakemake(tmp_path, packed_config(sources), "--summary").stdout
    assert "results/packs/cifar10/allconv5_w2_b32/t3-err-vs-w" in summary
    for name in ["metrics.csv", "model.pt", "provenance.json"]:
        assert f"results/runs/cifar10/{n30}/{name}" in summary
    # A run's deleted file is linked out of its pack again; nothing trains.
    (tmp_path / "results" / "runs" / "cifar10" / n30 / "metrics.csv").unlink()
    relinked = snakemake(tmp_path, packed_config(sources), "--cores", "1")
    assert relinked.returncode == 0, relinked.stdout[-3000:]
    counts = job_counts(relinked.stdout)
    assert counts.get("run_from_pack") == 1 and "train_pack" not in counts, counts
    # A new N in the grid reruns width 2's pack, which trains only the new run.
    again = snakemake(tmp_path, packed_config(sources, n_grid=(30, 60, 90)), "--cores", "1")
    assert again.returncode == 0, again.stdout[-3000:]
    assert "3 runs, 1 to train" in pack_log(tmp_path, "cifar10/allconv5_w2_b32/all")
    prov = json.loads((tmp_path / "results" / "runs" / "cifar10" / "allconv5_w2_N90_natural_i1_s0_zero" /
                       "provenance.json").read_text())
    assert prov["engine"] == "packed"


def test_a_dry_run_does_not_import_the_plotting_stack(built):
    workdir, sources, _ = built
    cfg = workdir / "config.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config(sources)))
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "snakemake", "-n", "--snakefile",
                          str(ROOT / "Snakefile"), "--directory", str(workdir), "--configfile", str(cfg)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    assert "deeptheory.grid" in imported
    assert not {"matplotlib", "seaborn", "torch"} & imported


def rule_names() -> set[str]:
    sources = [ROOT / "Snakefile", *(ROOT / "workflow" / "rules").glob("*.smk")]
    return {m for f in sources for m in re.findall(r"^\s*rule (\w+):", f.read_text(), re.M)}


def test_the_smoke_build_runs_every_kind_of_job(tmp_path):
    # config/smoke.yaml is the README's first look at the whole DAG: each rule runs at least
    # once, bar `train`, which packing replaces (pack: true; the default profile runs it).
    out = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "2", "--directory", str(tmp_path),
                          "--configfile", "config/offline.yaml", "config/smoke.yaml"],
                         cwd=ROOT, capture_output=True, text=True)
    counts = job_counts(out.stdout + out.stderr)
    assert set(counts) - {"total"} == rule_names() - {"train"}, out.stdout + out.stderr
    # About a minute on 2 cores: a handful of tiny packs.
    assert counts["train_pack"] <= 6 and counts["run_from_pack"] <= 12


def test_config_errors_are_one_line_before_any_job(tmp_path):
    # Snakemake's validate() printed the key on line 3, then 1,301 lines of schema and config.
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "fmnist.json").write_text(json.dumps(write_idx_set(sources / "fmnist", n_train=60, n_test=20)))
    (sources / "cifar.json").write_text(json.dumps(write_cifar_set(sources / "cifar", n_train=20, n_test=10)))
    bad = snakemake(tmp_path, tiny_config(sources), "-n", "--config", "widht=3")
    assert bad.returncode != 0
    # (Snakemake's own notice of the workflow profile, profiles/default, comes first)
    said = [l for l in bad.stdout.splitlines() if not l.startswith("Using workflow specific profile")]
    line = next(i for i, l in enumerate(said) if l.startswith("config key widht"))
    assert line <= 2 and len(said) <= line + 3, bad.stdout
    assert "unknown key (value 3); allowed here: claims, datasets, device" in bad.stdout
    assert "Failed validating" not in bad.stdout and not (tmp_path / "results").exists()
    cfg = tiny_config(sources)
    cfg["profiles"]["tiny"]["targets"]["t3-err-vs-w"]["N"] = [60, 60]
    bad = snakemake(tmp_path, cfg, "-n")
    assert f"config key profiles.tiny.targets.t3-err-vs-w.N: [60, 60] repeats 60; give each value once (set in " \
           f"{tmp_path / 'config.yaml'})" in bad.stdout
    assert len([l for l in bad.stdout.splitlines() if not l.startswith("Using workflow specific")]) <= 4, bad.stdout


def test_a_malformed_workflow_config_names_its_file_and_line(tmp_path):
    # Snakemake's own reading says "Config file is not valid JSON or YAML", naming neither.
    for part in ["workflow", "config", "src"]:
        shutil.copytree(ROOT / part, tmp_path / "checkout" / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "Snakefile", tmp_path / "checkout" / "Snakefile")
    config = tmp_path / "checkout" / "config" / "config.yaml"
    config.write_text(config.read_text().replace("profile: quick", "profile: [quick", 1))
    bad = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--snakefile",
                          str(tmp_path / "checkout" / "Snakefile"), "--directory", str(tmp_path)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert bad.returncode != 0
    assert re.search(rf"^config file {re.escape(str(config))}, line \d+, column \d+: not valid YAML", bad.stdout,
                     re.M), bad.stdout


def test_a_run_that_continues_its_twin_trains_after_it_from_its_final_state(tmp_path):
    """t3-err-vs-n-past-zero's zero+2 run reads t3-err-vs-n's zero run's model.pt (which keeps
    the twin's final state): the DAG trains the twin first even when only the continuation
    is asked for, the continuation's provenance names the twin, and a changed twin reruns it.
    Capped at 3 epochs, the twin does not fit N = 30 at width 2: the continuation stops at
    once, with the twin's numbers."""
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "cifar.json").write_text(json.dumps(write_cifar_set(sources / "cifar", n_train=120, n_test=60)))
    (sources / "fmnist.json").write_text(json.dumps(write_idx_set(sources / "fmnist", n_train=120, n_test=60)))
    cfg = tiny_config(sources, n_grid=(30,))
    tiny = cfg["profiles"]["tiny"]
    base = tiny["targets"]["t3-err-vs-n"]
    tiny["targets"] = {"t3-err-vs-n": base, "t3-err-vs-n-past-zero": {**base, "stop": "zero+2"}}
    tiny.pop("synthetic")
    twin, cont = (f"cifar10/allconv5_w2_N30_natural_i1_s0_{stop}" for stop in ("zero", "zero+2"))
    asked = f"results/runs/{cont}/provenance.json"
    dry = snakemake(tmp_path, cfg, asked, "-n")
    assert job_counts(dry.stdout).get("train") == 2, dry.stdout[-3000:]
    assert f"results/runs/{twin}/model.pt" in dry.stdout.split(f"output: results/runs/{cont}/")[0].rsplit("rule train:", 1)[1]
    assert snakemake(tmp_path, cfg, asked, "--cores", "1").returncode == 0
    runs = tmp_path / "results" / "runs"
    assert json.loads((runs / cont / "provenance.json").read_text())["continued_from"] == {"run_id": twin, "epoch": 3}
    import torch

    assert "final_state" in torch.load(runs / twin / "model.pt", weights_only=False)
    assert "final_state" not in torch.load(runs / cont / "model.pt", weights_only=False)
    # every column but those naming the run and its stop rule, and the wall time
    a, b = (pd.read_csv(runs / r / "metrics.csv").drop(columns=["run_id", "stop", "wall_s"], errors="ignore")
            for r in (twin, cont))
    pd.testing.assert_frame_equal(a, b)
    assert job_counts(snakemake(tmp_path, cfg, asked, "-n").stdout) == {}
    # the twin trained again: the continuation follows
    rerun = snakemake(tmp_path, cfg, asked, "-n", "--forcerun", f"results/runs/{twin}/model.pt")
    assert job_counts(rerun.stdout).get("train") == 2, rerun.stdout[-3000:]


def test_small_runs_trained_in_a_group_have_the_numbers_of_jobs_of_their_own(built, tmp_path):
    """Profile key group_runs trains small runs one after another in one job per group (rules
    train_group_<k>; grid.run_groups): each run's metrics are those of the same run trained by
    rule train (the built fixture, no groups), its provenance names its group, the timeline
    counts the group's runs, and a second build has nothing to do."""
    from deeptheory import timeline

    workdir, sources, _ = built
    cfg = tiny_config(sources)
    tiny = cfg["profiles"]["tiny"]
    tiny["targets"] = {t: tiny["targets"][t] for t in ("t3-err-vs-n", "t3-err-vs-w")}
    tiny.pop("synthetic")
    tiny["group_runs"] = {"run_max": 60 * 3, "group_max": 2 * 60 * 3}  # image-epochs: N x max_epochs (3)
    dry = snakemake(tmp_path, cfg, "-n")
    counts = job_counts(dry.stdout)
    # one group per data set: cifar10's N = 30 and 60 runs, mnist's stand-in's two N = 60 runs
    assert counts.get("train_group_1") == counts.get("train_group_2") == 1 and "train" not in counts, dry.stdout[-3000:]
    assert snakemake(tmp_path, cfg, "--cores", "2").returncode == 0
    grouped = sorted((tmp_path / "results" / "runs").glob("*/*/provenance.json"))
    assert len(grouped) == 4
    for prov in grouped:
        run = prov.parent.relative_to(tmp_path / "results" / "runs")
        assert json.loads(prov.read_text())["group"].endswith(("/group1", "/group2"))
        mine, alone = (pd.read_csv(root / "results" / "runs" / run / "metrics.csv").drop(columns=["wall_s"])
                       for root in (tmp_path, workdir))
        pd.testing.assert_frame_equal(mine, alone)
    rates = timeline.throughput(tmp_path, timeline.read_jobs(tmp_path))
    assert set(rates["kind"]) == {"train_group"} and rates["runs"].sum() == 4
    assert job_counts(snakemake(tmp_path, cfg, "-n").stdout) == {}
