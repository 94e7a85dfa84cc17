"""deeptheory.timeline on a generated build folder: benchmark files, logs, provenance and
Snakemake's job records written by hand, with known times."""

from __future__ import annotations

import base64
import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from deeptheory import cli, timeline

T0 = 1_800_000_000.0  # the build's first second
BENCH_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"

# name under benchmarks/ and logs/ (no suffix), start, wall s, cpu s, device its log states,
# outputs and inputs as Snakemake records them (None: no record).
JOBS = [
    ("fetch/ds", 0, 2.0, 1.0, None, ["data/raw/ds/verified.json"], []),
    ("decode/ds", 2, 3.0, 2.5, None, ["data/cache/ds.npz"], ["data/raw/ds/verified.json"]),
    ("train/ds/big", 5, 40.0, 39.0, "cuda:0", ["results/runs/ds/big/metrics.csv"], ["data/cache/ds.npz"]),
    ("train/ds/small", 5, 10.0, 9.0, "cpu", ["results/runs/ds/small/metrics.csv"], ["data/cache/ds.npz"]),
    ("train/ds/tiny", 6, 4.0, 3.5, "cpu", ["results/runs/ds/tiny/metrics.csv"], ["data/cache/ds.npz"]),
    ("train/ds/m_w2_b32/all.pack", 15, 20.0, 18.0, "cpu", ["results/packs/ds/m_w2_b32/all"], ["data/cache/ds.npz"]),
    ("analyses/t1/ds/small", 16, 6.0, 5.0, "cpu", ["results/analyses/t1/ds/small.csv"],
     ["results/runs/ds/small/metrics.csv"]),
    ("targets/t1", 45, 3.0, 2.0, None, ["results/t1/claims.csv"],
     ["results/runs/ds/big/metrics.csv", "results/runs/ds/small/metrics.csv", "results/analyses/t1/ds/small.csv"]),
    ("targets/t2", 35, 2.0, 1.5, None, None, []),  # no record: dated by its benchmark's mtime
    ("claims", 48, 0.5, 0.0, None, ["results/claims.csv"], ["results/t1/claims.csv"]),
    ("timeline", 49, 1.0, 1.0, None, ["results/timeline.png"], ["results/claims.csv"]),  # not drawn
]


def write_job(root: Path, name, start, wall, cpu, device, outputs, inputs, record_wall=None) -> None:
    bench = root / "benchmarks" / f"{name}.tsv"
    bench.parent.mkdir(parents=True, exist_ok=True)
    bench.write_text(BENCH_HEADER + f"{wall}\t0:00:00\t{100 + wall}\t1\t1\t1\t0\t0\t50\t{cpu}\n")
    end = T0 + start + wall
    os.utime(bench, (end, end))
    log = root / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"00:00:00 INFO job {name} on {device}: starting\n" if device else "00:00:00 INFO starting\n")
    for out in outputs or []:
        meta = root / ".snakemake" / "metadata" / base64.urlsafe_b64encode(out.encode()).decode()
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(json.dumps({"rule": name.split("/")[0], "input": inputs, "log": [f"logs/{name}.log"],
                                    "starttime": T0 + start, "endtime": T0 + start + (record_wall or wall)}))


def write_run(folder: Path, *, model, epoch, N, batch, wall_s, device, engine="single", created=T0 + 10) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "provenance.json").write_text(json.dumps({
        "created": datetime.fromtimestamp(created, timezone.utc).isoformat(timespec="seconds"),
        "config": {"profile": "quick"}, "code": {"commit": "abcdef1234567", "dirty": False},
        "device": {"device": device}, "engine": engine, "wall_s": wall_s,
        "final": {"model": model, "epoch": epoch, "N": N, "batch_size": batch}}))


@pytest.fixture
def build(tmp_path):
    for job in JOBS:
        write_job(tmp_path, *job)
    runs = tmp_path / "results" / "runs" / "ds"
    write_run(runs / "big", model="cnn", epoch=10, N=100, batch=32, wall_s=20.0, device="cuda:0")  # 40 steps
    write_run(runs / "small", model="mlp", epoch=5, N=64, batch=32, wall_s=2.0, device="cpu")       # 10 steps
    write_run(runs / "tiny", model="mlp", epoch=3, N=10, batch=32, wall_s=1.0, device="cpu")        # 3 steps
    pack = tmp_path / "results" / "packs" / "ds" / "m_w2_b32" / "all" / "ds"
    write_run(pack / "p1", model="m", epoch=4, N=50, batch=32, wall_s=5.0, device="cpu", engine="packed",
              created=T0 + 30)  # 8 steps
    write_run(pack / "p2", model="m", epoch=6, N=50, batch=32, wall_s=8.0, device="cpu", engine="packed",
              created=T0 + 34)  # 12 steps
    write_run(pack / "old", model="m", epoch=99, N=50, batch=32, wall_s=99.0, device="cpu", engine="packed",
              created=T0 - 3600)  # trained by an earlier pack, linked in: not this job's work
    return tmp_path


def test_every_benchmark_is_one_job_of_its_kind_but_the_timelines_own(build):
    jobs = timeline.read_jobs(build)
    assert sorted(zip(jobs["kind"], jobs["job"])) == sorted([
        ("fetch", "ds"), ("decode", "ds"), ("train", "ds/big"), ("train", "ds/small"), ("train", "ds/tiny"),
        ("train_pack", "ds/m_w2_b32/all"), ("analyze", "t1/ds/small"), ("target", "t1"), ("target", "t2"),
        ("claims", "claims")])
    assert timeline.kind_and_job(Path("train/ds/r1.from_pack.tsv")) == ("from_pack", "ds/r1")


def test_times_come_from_snakemakes_record_else_the_benchmarks_mtime(build):
    for path in (build / "benchmarks").rglob("*.tsv"):  # a copied folder: every mtime is now
        if path.name != "t2.tsv":
            os.utime(path)
    jobs = timeline.read_jobs(build).set_index(["kind", "job"])
    for name, start, wall, cpu, *_ in JOBS[:-1]:
        job = timeline.kind_and_job(Path(name + ".tsv"))
        assert jobs.at[job, "start"] == pytest.approx(T0 + start, abs=1e-6), name
        assert jobs.at[job, "end"] - jobs.at[job, "start"] == pytest.approx(wall)
        assert jobs.at[job, "cpu_s"] == cpu
    assert jobs.at[("target", "t2"), "clock"] == "mtime" and jobs.at[("target", "t1"), "clock"] == "record"


def test_a_record_of_another_run_of_the_job_is_not_believed(tmp_path):
    write_job(tmp_path, "targets/t1", 100, 3.0, 2.0, None, ["results/t1/claims.csv"], [], record_wall=60.0)
    job = timeline.read_jobs(tmp_path).iloc[0]
    assert job["clock"] == "mtime" and job["start"] == pytest.approx(T0 + 100)


def test_cuda_jobs_take_the_gpu_lane_and_no_two_jobs_of_a_slot_overlap(build):
    jobs = timeline.read_jobs(build)
    assert set(jobs.loc[jobs["lane"] == "GPU", "job"]) == {"ds/big"}
    for _, slot in jobs.groupby(["lane", "slot"]):
        slot = slot.sort_values("start")
        assert (slot["start"].to_numpy()[1:] >= slot["end"].to_numpy()[:-1]).all()
    # As many CPU slots as CPU jobs ever ran at once: small with tiny (5-10 s), the pack with
    # the analysis (16-22 s).
    cpu = jobs[jobs["lane"] == "CPU"]
    at_once = max(((cpu["start"] <= t) & (cpu["end"] > t)).sum() for t in cpu["start"])
    assert jobs.loc[jobs["lane"] == "CPU", "slot"].nunique() == at_once == 2


def test_the_breakdown_sums_wall_and_core_seconds_per_kind(build):
    jobs = timeline.read_jobs(build)
    table = timeline.breakdown(jobs, timeline.critical_path(jobs, timeline.snakemake_records(build))).set_index("kind")
    assert list(table.index) == ["fetch", "decode", "train", "train_pack", "analyze", "target", "claims", "all"]
    assert table.at["train", "jobs"] == 3
    assert table.at["train", "wall_s"] == 54.0 and table.at["train", "core_s"] == 51.5
    assert table.at["all", "wall_s"] == pytest.approx(table["wall_s"].drop("all").sum())
    assert table.at["all", "core_s"] == pytest.approx(sum(j[3] for j in JOBS[:-1]))
    assert table.at["all", "jobs"] == len(JOBS) - 1
    # fetch 2 + decode 3 + train big 40 + target t1 3 + claims 0.5
    assert table.at["all", "critical_s"] == 48.5 and table.at["train", "critical_s"] == 40.0
    assert timeline.busy_s(jobs) == pytest.approx(48.5)


def test_a_build_made_by_two_commands_is_drawn_without_its_idle_hours(build, tmp_path_factory):
    write_job(build, "targets/t3", 3 * 3600, 5.0, 4.0, None, ["results/t3/claims.csv"], [])
    jobs = timeline.read_jobs(build)
    (at, length), = timeline.idle_gaps(jobs)
    assert at == pytest.approx(T0 + 48.5) and length == pytest.approx(3 * 3600 - 48.5)
    assert timeline.busy_s(jobs) == pytest.approx(48.5 + 5.0)
    clock = timeline.busy_clock(jobs, [(at, length)])
    assert clock(T0 + 3 * 3600) == pytest.approx(48.5) and clock(T0 + 45) == pytest.approx(45)
    out = tmp_path_factory.mktemp("gap") / "timeline.png"
    timeline.draw(jobs, timeline.throughput(build, jobs), "two commands", out)
    assert out.stat().st_size > 0


def test_the_critical_path_is_the_longest_chain_of_inputs(build):
    jobs = timeline.read_jobs(build)
    path = jobs.loc[timeline.critical_path(jobs, timeline.snakemake_records(build)), "job"].tolist()
    assert path == ["ds", "ds", "ds/big", "t1", "claims"]
    assert timeline.critical_path(jobs, {}) == []
    assert timeline.breakdown(jobs, [])["critical_s"].isna().all()  # unknown, not zero


def test_throughput_counts_each_jobs_own_steps(build):
    rates = timeline.throughput(build, timeline.read_jobs(build)).set_index("job")
    assert rates.at["ds/big", "steps"] == 40 and rates.at["ds/big", "steps_per_s"] == pytest.approx(2.0)
    assert rates.at["ds/big", "lane"] == "GPU"
    assert rates.at["ds/small", "steps_per_s"] == pytest.approx(5.0)
    pack = rates.loc["ds/m_w2_b32/all"]
    assert pack["runs"] == 2 and pack["steps"] == 20 and pack["train_s"] == 8.0  # the linked run left out
    assert pack["steps_per_s"] == pytest.approx(2.5)


def test_the_figure_and_table_are_written_and_name_the_build(build, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    s = timeline.write(build, out / "timeline.png", out / "timeline.csv")
    assert (out / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pd.read_csv(out / "timeline.csv").equals(s["breakdown"])
    assert s["label"].endswith("commit abcdef1, profile quick")


def test_the_command_prints_the_breakdown(build, capsys, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli")
    assert cli.main(["timeline", "-d", str(build), "--top", "2", "--jobs", str(out / "jobs.csv")]) == 0
    text = capsys.readouterr().out
    assert "commit abcdef1, profile quick" in text and "train_pack" in text and "critical path" in text
    assert "40.0 s" in text and "ds/big" in text
    assert len(pd.read_csv(out / "jobs.csv")) == len(JOBS) - 1
    assert cli.main(["timeline", "-d", str(out)]) == 2
    assert "no benchmarks/ folder" in capsys.readouterr().err


def test_a_continued_run_counts_only_the_steps_and_seconds_past_its_twin(tmp_path):
    """A run that continued its twin (provenance continued_from) carries the twin's epochs and
    clock in its rows; the twin's job trained those, so they count there, not twice."""
    runs = tmp_path / "results" / "runs" / "ds"
    write_run(runs / "twin", model="m", epoch=30, N=64, batch=32, wall_s=6.0, device="cpu")
    write_run(runs / "long", model="m", epoch=50, N=64, batch=32, wall_s=10.0, device="cpu")
    prov = json.loads((runs / "long" / "provenance.json").read_text())
    prov["continued_from"] = {"run_id": "ds/twin", "epoch": 30}
    (runs / "long" / "provenance.json").write_text(json.dumps(prov))
    assert timeline.own_share(tmp_path, prov) == (40, pytest.approx(4.0))   # 20 epochs x 2 steps, 10 - 6 s
    twin = json.loads((runs / "twin" / "provenance.json").read_text())
    assert timeline.own_share(tmp_path, twin) == (60, 6.0)
