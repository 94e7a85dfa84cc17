"""Faults: a killed build, half-written files, a bad config key, an unreachable source, a
wrong checksum and a full disk each stop cleanly, with a message, and leave no partial file
that a later step could take for a complete one."""

from __future__ import annotations

import errno
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import train_settings
from deeptheory import atomic, fetch, manifest, paths, runio
from deeptheory.run.checkpoints import load_checkpoint
from deeptheory.run.results import RunResult
from deeptheory.spec import RunSpec
from conftest import ROOT, checkout_config, make_sources, snakemake
from test_audit import errors, run_audit
from test_workflow import tiny_config

RUN = "results/runs/cifar10/allconv5_w2_N120_natural_i1_s0_e40"


def kill_config(sources: Path) -> dict:
    """One run long enough to be killed in the middle: 40 epochs, whatever the error."""
    cfg = tiny_config(sources)
    cfg["profiles"]["tiny"]["targets"] = {"t3-err-vs-n": {"dataset": "cifar10", "model": "allconv5", "widths": [2],
                                                          "N": [120], "labels": "natural", "stop": "e40"}}
    cfg["profiles"]["tiny"].pop("synthetic")
    return cfg


def numbers(metrics: Path) -> pd.DataFrame:
    """The numbers of a run's metrics: all but the timings."""
    return pd.read_csv(metrics).drop(columns=["wall_s"])


def test_kill_9_mid_training_then_unlock_and_rerun_gives_the_uninterrupted_results(tmp_path):
    sources = make_sources(tmp_path)
    cfg = kill_config(sources)
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    killed.mkdir()
    clean.mkdir()
    (killed / "config.yaml").write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
                             "--directory", str(killed), "--configfile", str(killed / "config.yaml"), "--cores", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    checkpoints = killed / "results" / "checkpoints"
    deadline = time.time() + 300
    while not list(checkpoints.rglob("*.pt")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole build, its training job with it
    proc.wait()
    assert list(checkpoints.rglob("*.pt")), "no checkpoint appeared before the build ended"
    assert not (killed / RUN / "provenance.json").exists(), "the run finished before the kill"

    # The documented recovery: unlock, then the same command.
    again = snakemake(killed, cfg, "--cores", "1")
    assert again.returncode != 0 and "unlock" in again.stdout  # the killed build's lock is still held
    assert snakemake(killed, cfg, "--unlock").returncode == 0
    resumed = snakemake(killed, cfg, "--cores", "1")
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert "resuming from checkpoint" in (killed / "logs" / "train" / "cifar10" /
                                         "allconv5_w2_N120_natural_i1_s0_e40.log").read_text()
    assert not list(checkpoints.rglob("*.pt"))  # done: the checkpoint is gone

    uninterrupted = snakemake(clean, cfg, "--cores", "1")
    assert uninterrupted.returncode == 0, uninterrupted.stdout[-3000:]
    a, b = numbers(killed / RUN / "metrics.csv"), numbers(clean / RUN / "metrics.csv")
    assert len(a) == 40
    pd.testing.assert_frame_equal(a, b)
    assert (killed / "results" / "claims.csv").read_text() == (clean / "results" / "claims.csv").read_text()
    # Nothing half-written is left behind: the recovered build audits clean.
    rc, report = run_audit(killed)
    assert rc == 0, errors(report)


def spec(**kw) -> RunSpec:
    return RunSpec(dataset="tiny", model="allconv5", width=2, N=30, **train_settings(**kw))


def test_a_truncated_checkpoint_is_ignored_with_a_warning(tmp_path, caplog):
    import torch

    path = tmp_path / "results" / "checkpoints" / "run.pt"
    path.parent.mkdir(parents=True)
    torch.save({"spec": spec().to_dict(), "momentum": {}, "epoch": 3, "rows": [], "wall_s": 1.0}, path)
    assert load_checkpoint(path, spec())["epoch"] == 3
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with caplog.at_level(logging.WARNING, logger="deeptheory.run"):
        assert load_checkpoint(path, spec()) is None
    assert "does not load" in caplog.text and "starting afresh" in caplog.text


def test_a_run_folder_without_provenance_is_not_done(tmp_path):
    result = RunResult(spec(), [{"epoch": 1, "train_err": 0.0, "final": True}], {}, 1.0)
    folder = tmp_path / "results" / "runs" / "tiny" / "r"
    runio.write_run(result, folder, profile="t", device="cpu", verified=None, engine="single")
    assert paths.is_done(folder, spec())
    assert not paths.is_done(folder, spec(lr=0.2))  # made from other settings
    (folder / "provenance.json").unlink()           # as a kill between metrics and provenance leaves it
    assert not paths.is_done(folder, spec())


def test_an_unknown_config_key_is_rejected_by_name(tmp_path):
    cfg = checkout_config()
    out = snakemake(tmp_path, cfg, "-n", "--config", "width=abc")
    assert out.returncode != 0
    assert "config key width: unknown key (value 'abc'); allowed here: claims, datasets" in out.stdout
    assert not (tmp_path / "results").exists()


def test_an_unreachable_source_stops_with_a_message_and_leaves_nothing(tmp_path):
    files = {"t10k-labels-idx1-ubyte.gz": {"md5": "0" * 32}}
    with pytest.raises(fetch.DataSourceError) as err:
        fetch.fetch_dataset("mnist", {"format": "idx", "source": "http://127.0.0.1:9/mnist/", "files": files},
                            tmp_path / "data")
    assert "could not fetch t10k-labels-idx1-ubyte.gz" in str(err.value) and "datasets.mnist.source" in str(err.value)
    # Nothing that looks fetched: only the note the workflow prints last (fetch.failure_note).
    assert [p.name for p in (tmp_path / "data" / "raw" / "mnist").iterdir()] == ["fetch.failed"]
    assert fetch.OFFLINE_COMMAND in fetch.failure_note(tmp_path / "data", "mnist").read_text()


def test_an_unreachable_source_ends_the_build_with_the_data_set_source_and_offline_command(tmp_path):
    cfg = tiny_config(make_sources(tmp_path))
    cfg["datasets"]["cifar10"]["source"] = "http://127.0.0.1:9/cifar/"  # nothing listens: as offline
    cfg["profiles"]["tiny"]["targets"] = {"t3-err-vs-n": {**cfg["profiles"]["tiny"]["targets"]["t3-err-vs-n"],
                                                          "N": [30]}}
    cfg["profiles"]["tiny"].pop("synthetic")
    result = snakemake(tmp_path, cfg, "--cores", "1")
    assert result.returncode != 0
    last = "\n".join(result.stdout.strip().splitlines()[-10:])  # what the operator reads first
    assert "data set 'cifar10'" in last and "http://127.0.0.1:9/cifar/cifar-10-python.tar.gz" in last, last
    assert fetch.OFFLINE_COMMAND in last and "datasets.cifar10.source" in last
    assert "did not complete successfully" not in last
    # Once the source is reachable the fetch clears its note: no later failure repeats it.
    cfg["datasets"]["cifar10"]["source"] = str(tmp_path / "sources" / "cifar")
    fetched = snakemake(tmp_path, cfg, "--cores", "1", "data/raw/cifar10/verified.json")
    assert fetched.returncode == 0, fetched.stdout[-3000:]
    assert fetch.fetch_failures(tmp_path / "data", since=0) == []


def test_a_wrong_md5_stops_with_a_message_and_leaves_nothing(idx_dir, tmp_path):
    folder, files = idx_dir
    name = "t10k-labels-idx1-ubyte.gz"
    with pytest.raises(fetch.DataSourceError) as err:
        fetch.fetch_dataset("mnist", {"format": "idx", "source": str(folder), "files": {name: {"md5": "f" * 32}}},
                            tmp_path / "data")
    msg = str(err.value)
    assert f"expected {'f' * 32}, actual {files[name]['md5']}" in msg and f"datasets.mnist.files.{name}.md5" in msg
    # nothing but the note the build's last message reads (fetch.fetch_failures)
    assert [p.name for p in (tmp_path / "data" / "raw" / "mnist").iterdir()] == ["fetch.failed"]


def test_a_full_disk_stops_the_write_with_a_message_and_leaves_no_partial_file(tmp_path, monkeypatch):
    folder = tmp_path / "results" / "runs" / "tiny" / "r"
    metrics = folder / "metrics.csv"
    frame = pd.DataFrame({"epoch": range(1000), "train_err": 0.5})
    atomic.write_csv(metrics, frame.head(3))  # a previous version
    before = metrics.read_bytes()

    def full_disk(self, path, **kw):
        with open(path, "w") as f:
            f.write("epoch,train_err\n0,0.")  # part of the file, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full_disk)
    with pytest.raises(OSError) as err:
        atomic.write_csv(metrics, frame)
    assert err.value.errno == errno.ENOSPC
    assert "no space left on device while writing" in str(err.value) and str(metrics) in str(err.value)
    assert metrics.read_bytes() == before                            # the old version, whole
    assert sorted(p.name for p in folder.iterdir()) == [".manifest.json", ".manifest.lock", "metrics.csv"]
    assert manifest.read(folder)["metrics.csv"]["sha256"] == manifest.sha256_file(metrics)

    # A run whose metrics cannot be written is not done, and leaves nothing half-written.
    monkeypatch.undo()
    new = tmp_path / "results" / "runs" / "tiny" / "new"

    def full_disk_text(self, data, *a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full_disk_text)
    result = RunResult(spec(), [{"epoch": 1, "train_err": 0.0, "final": True}], {}, 1.0)
    with pytest.raises(OSError, match="no space left on device while writing .*provenance.json"):
        runio.write_run(result, new, profile="t", device="cpu", verified=None, engine="single")
    monkeypatch.undo()
    assert not paths.is_done(new, spec())
    assert not [p for p in new.iterdir() if p.name.endswith(".tmp")]
