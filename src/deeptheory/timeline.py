"""Where a build's time went: its jobs over time, the time and cores each kind of job took,
and how fast training stepped.

Every rule writes a benchmark file (``benchmarks/<...>.tsv``, Snakemake's columns ``s``,
``h:m:s``, ``max_rss``, ..., ``cpu_time``) and a log at the mirrored path
(``logs/<...>.log``). A benchmark holds no start time. A job's interval comes from
Snakemake's record of the job (``.snakemake/metadata/``: ``starttime``, ``endtime``, the
job's ``log`` and ``input``), which survives a copy of the build folder; without one (a
build run with ``--drop-metadata``, or a record that belongs to another run of the job), it
ends at the benchmark file's mtime (written as the job ended, within a millisecond of the
record) and starts ``s`` seconds before. The logs' own timestamps are no better: they give
the time of day to the second, without a date, from after the job's imports.

A job's lane is GPU when it ran on CUDA (the ``device`` its runs' provenance records, else
the ``on <device>`` its log states first), CPU otherwise. Training throughput is read from
each trained run's provenance (its final epoch, N, batch size and training wall time).

``deeptheory timeline -d BUILD`` prints the breakdown of any finished build; rule
``timeline`` draws ``results/timeline.png`` and writes ``results/timeline.csv``.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import re
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

# Kinds in DAG order, with their colours; a kind not listed (a new rule) is drawn in grey.
KINDS = {"fetch": "tab:brown", "decode": "tab:pink", "train": "tab:blue", "train_group": "tab:olive",
         "train_pack": "tab:purple", "from_pack": "tab:cyan", "analyze": "tab:orange", "target": "tab:green",
         "claims": "tab:red"}
# benchmarks/<folder>/... -> kind; a file right under benchmarks/ is named by its kind (claims).
FOLDER_KINDS = {"fetch": "fetch", "decode": "decode", "train": "train", "analyses": "analyze", "targets": "target"}
# Suffixes of files under benchmarks/train/ of rules other than train: a group of small runs
# (train_group_<k>) and the packed path's (train_pack, run_from_pack).
SUFFIX_KINDS = {".group": "train_group", ".pack": "train_pack", ".from_pack": "from_pack"}
TRAINING = ("train", "train_group", "train_pack")
# The timeline's own job is no part of the build it draws.
SELF = "timeline"
# Seconds a Snakemake record's duration may differ from its benchmark's before the record is
# taken for another run of the job (a benchmark rounds to 0.01 s; both time the same process).
RECORD_TOL_S = 2.0
# Seconds within which a pack's member was written by the pack job, not linked in from earlier
# (provenance's `created` is to the second).
CREATED_TOL_S = 2.0
# Seconds without any job that the figure cuts out (a build made by several commands), marked.
IDLE_GAP_S = 120.0
JOB_COLUMNS = ["kind", "job", "start", "end", "wall_s", "cpu_s", "max_rss_mb", "device", "lane", "slot", "clock",
               "log"]


# -- jobs ---------------------------------------------------------------------------------
def kind_and_job(rel: Path) -> tuple[str, str]:
    """The kind and name of the job behind ``rel``, a benchmark path under benchmarks/."""
    stem = str(rel.with_suffix(""))
    for suffix, kind in SUFFIX_KINDS.items():
        if stem.endswith(suffix):
            return kind, stem[: -len(suffix)].split("/", 1)[1]
    if len(rel.parts) == 1:
        return stem, stem
    return FOLDER_KINDS.get(rel.parts[0], rel.parts[0]), stem.split("/", 1)[1]


def read_benchmark(path: Path) -> dict:
    """Wall seconds, CPU seconds and peak memory of one job (the sum of its rows: a rule
    benchmarked with repeat() runs several times)."""
    table = pd.read_csv(path, sep="\t")
    num = lambda col: pd.to_numeric(table.get(col, pd.Series(dtype=float)), errors="coerce")  # noqa: E731
    return {"wall_s": float(num("s").sum()), "cpu_s": float(num("cpu_time").sum()),
            "max_rss_mb": float(num("max_rss").max()) if num("max_rss").notna().any() else math.nan}


def snakemake_records(workdir: Path) -> dict[str, dict]:
    """Snakemake's record of each job, by its log path, with the ``outputs`` it made: one
    record per output, named by the output's urlsafe base64 (split into folders when long)."""
    folder = workdir / ".snakemake" / "metadata"
    records: dict[str, dict] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            output = base64.urlsafe_b64decode("".join(path.relative_to(folder).parts)).decode()
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for log in rec.get("log") or []:
            records.setdefault(log, {**rec, "outputs": []})["outputs"].append(output)
    return records


def device_in_log(log: Path) -> str | None:
    """The first ``on <device>`` a job's log states (train, train_pack and analyze say it)."""
    try:
        with open(log) as fh:
            for line, _ in zip(fh, range(20)):
                m = re.search(r" on (cuda(?::\d+)?|cpu|mps)\b", line)
                if m:
                    return m[1]
    except OSError:
        pass
    return None


def trained_runs(workdir: Path, kind: str, job: str) -> list[dict]:
    """Provenance of each run a training job's folder holds."""
    if kind == "train":
        files = [workdir / "results" / "runs" / job / "provenance.json"]
    elif kind == "train_pack":
        files = sorted((workdir / "results" / "packs" / job).glob("*/*/provenance.json"))
    elif kind == "train_group":  # its runs name it in their provenance (runio.write_run)
        files = sorted((workdir / "results" / "runs").glob("*/*/provenance.json"))
    else:
        return []
    out = []
    for f in files:
        try:
            out.append(json.loads(f.read_text()))
        except (OSError, ValueError):
            continue
    return [p for p in out if p.get("group") == job] if kind == "train_group" else out


def read_jobs(workdir: str | Path, records: dict[str, dict] | None = None) -> pd.DataFrame:
    """One row per job that wrote a benchmark: kind, job, start and end (UNIX seconds),
    wall and CPU seconds, peak memory, device and lane (GPU/CPU), the slot of its lane it
    is drawn in, which clock dated it (``record``: Snakemake's; ``mtime``) and its log.
    ``records``: snakemake_records(workdir), when the caller has read them."""
    workdir = Path(workdir)
    bench = workdir / "benchmarks"
    records = snakemake_records(workdir) if records is None else records
    rows = []
    for path in sorted(bench.rglob("*.tsv")):
        rel = path.relative_to(bench)
        kind, job = kind_and_job(rel)
        if kind == SELF:
            continue
        log = str(Path("logs") / rel.with_suffix(".log"))
        row = {"kind": kind, "job": job, "log": log, **read_benchmark(path)}
        rec = records.get(log)
        if rec and rec.get("starttime") and rec.get("endtime") and \
                abs(rec["endtime"] - rec["starttime"] - row["wall_s"]) <= RECORD_TOL_S:
            row.update(start=float(rec["starttime"]), end=float(rec["endtime"]), clock="record")
        else:
            end = path.stat().st_mtime
            row.update(start=end - row["wall_s"], end=end, clock="mtime")
        devices = [p.get("device", {}).get("device") for p in trained_runs(workdir, kind, job)]
        row["device"] = next((d for d in devices if d), None) or device_in_log(workdir / log) or "cpu"
        row["lane"] = "GPU" if str(row["device"]).startswith("cuda") else "CPU"
        rows.append(row)
    jobs = pd.DataFrame(rows, columns=[c for c in JOB_COLUMNS if c != "slot"])
    return assign_slots(jobs)[JOB_COLUMNS]


def assign_slots(jobs: pd.DataFrame) -> pd.DataFrame:
    """Each job into the first slot of its lane that is free when it starts (greedy interval
    partitioning: as many slots as jobs ever ran at once in that lane, none overlapping)."""
    jobs = jobs.sort_values(["start", "end"], kind="stable").reset_index(drop=True)
    slots = []
    free_at: dict[str, list[float]] = {}
    for lane, start, end in zip(jobs["lane"], jobs["start"], jobs["end"]):
        ends = free_at.setdefault(lane, [])
        slot = next((i for i, e in enumerate(ends) if e <= start), len(ends))
        if slot == len(ends):
            ends.append(end)
        ends[slot] = end
        slots.append(slot)
    return jobs.assign(slot=slots)


# -- what the build spent -------------------------------------------------------------------
def busy_s(jobs: pd.DataFrame) -> float:
    """Seconds during which at least one job ran (the span less the idle gaps between
    commands that built the folder piecewise)."""
    span = jobs["end"].max() - jobs["start"].min()
    return float(span - sum(length for _, length in idle_gaps(jobs, 0.0)))


def idle_gaps(jobs: pd.DataFrame, min_gap_s: float = IDLE_GAP_S) -> list[tuple[float, float]]:
    """(start, seconds) of each stretch longer than ``min_gap_s`` in which no job ran: the
    pauses between the commands that built the folder piecewise."""
    gaps, reach = [], math.inf
    for start, end in sorted(zip(jobs["start"], jobs["end"])):
        if start - reach > min_gap_s:
            gaps.append((reach, start - reach))
        reach = end if reach == math.inf else max(reach, end)
    return gaps


def busy_clock(jobs: pd.DataFrame, gaps: list[tuple[float, float]]):
    """Seconds since the first job started, less the idle gaps before each moment."""
    t0 = jobs["start"].min()
    return lambda t: t - t0 - sum(length for at, length in gaps if at + length <= t)


def dependencies(jobs: pd.DataFrame, records: dict[str, dict]) -> dict[int, set[int]]:
    """Row index of each job -> the rows of the jobs that made its inputs, by Snakemake's
    record of each job's inputs and outputs (empty without records)."""
    row_of = {log: i for i, log in zip(jobs.index, jobs["log"]) if log in records}
    made_by = {out: row_of[log] for log in row_of for out in records[log]["outputs"]}
    return {i: {made_by[f] for f in records[log].get("input", []) if f in made_by} - {i}
            for log, i in row_of.items()}


def critical_path(jobs: pd.DataFrame, records: dict[str, dict]) -> list[int]:
    """The chain of dependent jobs whose wall times sum highest: no number of cores builds
    the folder in less time than it, at these job times. Row indices of ``jobs``, first job
    first; empty without Snakemake's records (snakemake_records) of the jobs' inputs."""
    deps = dependencies(jobs, records)
    if not deps:
        return []
    longest: dict[int, tuple[float, int | None]] = {}  # row -> (chain seconds ending there, previous row)
    for i in jobs.sort_values("end").index:  # an input's job ended before its reader started
        before = max(((longest[d][0], d) for d in deps.get(i, ()) if d in longest), default=(0.0, None))
        longest[i] = (before[0] + float(jobs.at[i, "wall_s"]), before[1])
    path = [max(longest, key=lambda i: longest[i][0])]
    while longest[path[-1]][1] is not None:
        path.append(longest[path[-1]][1])
    return path[::-1]


def breakdown(jobs: pd.DataFrame, critical: list[int] | None = None) -> pd.DataFrame:
    """Per kind: jobs, wall seconds, core-seconds (CPU time), mean cores busy while one ran,
    peak memory, and seconds on the critical path (blank without one: no Snakemake records);
    a last row ``all`` sums them."""
    on_path = jobs.loc[critical or []]
    rows = []
    kinds = [k for k in KINDS if k in set(jobs["kind"])] + sorted(set(jobs["kind"]) - set(KINDS))
    for kind, part in [(k, jobs[jobs["kind"] == k]) for k in kinds] + [("all", jobs)]:
        crit = on_path if kind == "all" else on_path[on_path["kind"] == kind]
        wall, cpu = float(part["wall_s"].sum()), float(part["cpu_s"].sum())
        rows.append({"kind": kind, "jobs": len(part), "wall_s": round(wall, 2), "core_s": round(cpu, 2),
                     "cores": round(cpu / wall, 2) if wall else math.nan,
                     "max_rss_mb": float(part["max_rss_mb"].max()) if len(part) else math.nan,
                     "critical_s": round(float(crit["wall_s"].sum()), 2) if critical else math.nan})
    return pd.DataFrame(rows)


def throughput(workdir: str | Path, jobs: pd.DataFrame) -> pd.DataFrame:
    """Per training job (a run, a group, or a pack): the runs it trained, their SGD steps (epochs
    x ceil(N / batch size), each run's whole life, a resumed one's included), the seconds
    training took (a group's runs train in turn: their sum; a pack's step together: its
    longest run's), and run-steps per second.
    A pack's member linked in from an earlier job is not counted."""
    rows = []
    for _, job in jobs[jobs["kind"].isin(TRAINING)].iterrows():
        runs = [p for p in trained_runs(Path(workdir), job["kind"], job["job"]) if "final" in p]
        if job["kind"] == "train_pack":
            runs = [p for p in runs if p.get("engine") == "packed" and _created(p) >= job["start"] - CREATED_TOL_S]
        if not runs:
            continue
        steps, seconds = zip(*(own_share(Path(workdir), p) for p in runs))
        train_s = sum(seconds) if job["kind"] == "train_group" else max(seconds)  # a group's runs train in turn
        rows.append({"kind": job["kind"], "job": job["job"], "lane": job["lane"],
                     "model": "+".join(sorted({p["final"]["model"] for p in runs})), "runs": len(runs),
                     "steps": int(sum(steps)), "train_s": round(train_s, 3), "job_s": job["wall_s"],
                     "steps_per_s": sum(steps) / train_s if train_s > 0 else math.nan})
    return pd.DataFrame(rows, columns=["kind", "job", "lane", "model", "runs", "steps", "train_s", "job_s",
                                       "steps_per_s"])


def own_share(workdir: Path, prov: dict) -> tuple[int, float]:
    """A run's own SGD steps and training seconds. A run that continued its twin
    (provenance ``continued_from``) carries the twin's epochs and clock in its rows; the
    twin's job trained those, so they count there only."""
    per_epoch = -(-prov["final"]["N"] // prov["final"]["batch_size"])
    steps, seconds = prov["final"]["epoch"] * per_epoch, float(prov["wall_s"])
    twin = prov.get("continued_from")
    if twin:
        try:
            twin_s = float(json.loads((workdir / "results" / "runs" / twin["run_id"] / "provenance.json")
                                      .read_text())["wall_s"])
        except (OSError, ValueError, KeyError):
            twin_s = 0.0  # the twin's record is gone: its share cannot be told apart
        steps, seconds = steps - twin["epoch"] * per_epoch, max(seconds - twin_s, 0.0)
    return steps, seconds


def _created(prov: dict) -> float:
    try:
        return datetime.fromisoformat(prov["created"]).timestamp()
    except (KeyError, ValueError):
        return math.inf


def build_label(workdir: str | Path) -> str:
    """The build's folder, commit(s) and profile(s), from the provenance of its targets and runs."""
    workdir = Path(workdir)
    commits, profiles = Counter(), Counter()
    results = workdir / "results"
    for f in [*results.glob("*/provenance.json"), *(results / "runs").glob("*/*/provenance.json")]:
        try:
            prov = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        code = prov.get("code", {})
        commits[str(code.get("commit", "?"))[:7] + ("+dirty" if code.get("dirty") else "")] += 1
        profiles[str(prov.get("config", {}).get("profile", "?"))] += 1
    name = lambda c: ", ".join(k for k, _ in c.most_common()) or "unknown"  # noqa: E731
    return f"{workdir.resolve().name}: commit {name(commits)}, profile {name(profiles)}"


# -- the figure ---------------------------------------------------------------------------
def draw(jobs: pd.DataFrame, rates: pd.DataFrame, label: str, out_png) -> None:
    """Jobs over time as bars, one row per slot, the GPU lane above the CPU lane, coloured by
    kind; below, run-steps per second of each training job by model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from .atomic import atomic_path

    gaps = idle_gaps(jobs) if len(jobs) else []
    clock = busy_clock(jobs, gaps) if len(jobs) else (lambda t: t)
    lanes = [(lane, s) for lane in ("GPU", "CPU") for s in sorted(set(jobs.loc[jobs["lane"] == lane, "slot"]))]
    height = 2.0 + 0.35 * max(len(lanes), 1)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, height + 3.2), height_ratios=[height, 3.2])
    for y, (lane, slot) in enumerate(lanes):
        part = jobs[(jobs["lane"] == lane) & (jobs["slot"] == slot)]
        top.broken_barh([(clock(s) / 60, max(w, 0.01) / 60) for s, w in zip(part["start"], part["wall_s"])],
                        (y - 0.4, 0.8), facecolors=[KINDS.get(k, "grey") for k in part["kind"]],
                        edgecolor="white", linewidth=0.3)
    for at, length in gaps:
        top.axvline(clock(at) / 60, color="black", ls="--", lw=0.8)
        idle = f"idle {length / 3600:.1f} h" if length >= 3600 else f"idle {length / 60:.0f} min"
        top.annotate(idle, (clock(at) / 60, 0.99), xycoords=("data", "axes fraction"), fontsize=7, va="top",
                     ha="center", bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
    top.set_yticks(range(len(lanes)), [f"{lane} {slot + 1}" for lane, slot in lanes])
    top.invert_yaxis()
    top.set_xlabel("minutes since the first job started" + (", idle stretches cut out (dashed)" if gaps else ""))
    top.set_title(label, fontsize=9)
    present = [k for k in KINDS if k in set(jobs["kind"])] + sorted(set(jobs["kind"]) - set(KINDS))
    top.legend(handles=[Patch(color=KINDS.get(k, "grey"), label=k) for k in present], fontsize=7, ncol=len(present),
               loc="upper center", bbox_to_anchor=(0.5, -0.28), frameon=False)
    if len(rates):
        models = sorted(set(rates["model"]))
        for lane, marker in (("CPU", "o"), ("GPU", "s")):
            part = rates[rates["lane"] == lane]
            if part.empty:
                continue
            bottom.scatter([models.index(m) for m in part["model"]], part["steps_per_s"], marker=marker, s=16,
                           alpha=0.7, label=f"{lane}: " + ("pack" if (part["kind"] == "train_pack").any() else "run"))
        bottom.set_xticks(range(len(models)), models, rotation=30, fontsize=7, ha="right")
        bottom.set_yscale("log")
        bottom.set_ylabel("run-steps per second\n(a pack: its runs' sum)", fontsize=8)
        bottom.legend(fontsize=7)
    else:
        bottom.text(0.5, 0.5, "no training job in this build", ha="center", va="center", transform=bottom.transAxes)
        bottom.set_axis_off()
    bottom.set_title("training throughput per job", fontsize=9)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=130, format="png")
    plt.close(fig)


# -- reading a build at once --------------------------------------------------------------
def summary(workdir: str | Path) -> dict:
    """Jobs, breakdown, throughput, critical path and label of one build folder."""
    records = snakemake_records(Path(workdir))
    jobs = read_jobs(workdir, records)
    critical = critical_path(jobs, records)
    return {"jobs": jobs, "breakdown": breakdown(jobs, critical), "throughput": throughput(workdir, jobs),
            "critical": critical, "label": build_label(workdir)}


def write(workdir: str | Path, out_png, out_csv) -> dict:
    """The figure and the breakdown table of a build (rule timeline)."""
    from .atomic import write_csv

    s = summary(workdir)
    label = f"{s['label']}; {headline(s['jobs'])}"
    draw(s["jobs"], s["throughput"], label, out_png)
    write_csv(Path(out_csv), s["breakdown"])
    return s


def headline(jobs: pd.DataFrame) -> str:
    if jobs.empty:
        return "no jobs"
    span = jobs["end"].max() - jobs["start"].min()
    return (f"{len(jobs)} jobs, {span / 60:.1f} min from first start to last end ({busy_s(jobs) / 60:.1f} busy), "
            f"{jobs['wall_s'].sum() / 60:.1f} job-min, {jobs['cpu_s'].sum() / 60:.1f} core-min")


def text(s: dict, top: int = 10) -> str:
    jobs, lines = s["jobs"], [s["label"], headline(s["jobs"])]
    if jobs.empty:
        return "\n".join(lines)
    started = datetime.fromtimestamp(jobs["start"].min(), timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines += [f"first job started {started}; clock: " + ", ".join(f"{n} by {c}" for c, n in
                                                                   jobs["clock"].value_counts().items()),
              "", s["breakdown"].to_string(index=False), "", "largest jobs (wall):"]
    big = jobs.nlargest(top, "wall_s")
    lines += [f"  {r.wall_s:8.1f} s  {r.cpu_s:8.1f} core-s  {r.lane}  {r.kind:10s} {r.job}" for r in big.itertuples()]
    if s["critical"]:
        path = jobs.loc[s["critical"]]
        lines += ["", f"critical path (no number of cores builds it faster): {len(path)} jobs, "
                      f"{path['wall_s'].sum():.1f} s of the {jobs['end'].max() - jobs['start'].min():.1f} s span: "
                  + " -> ".join(f"{k} {j} ({w:.0f} s)" for k, j, w in zip(path["kind"], path["job"], path["wall_s"]))]
    rates = s["throughput"]
    if len(rates):
        train_jobs = jobs[jobs["kind"].isin(TRAINING)]
        lines += ["", f"training loops: {rates['train_s'].sum():.1f} s of the {train_jobs['wall_s'].sum():.1f} s "
                      f"training jobs took (outside the loop, per job: median "
                      f"{(rates['job_s'] - rates['train_s']).median():.1f} s: start, imports, data, writing)",
                  "training throughput (run-steps per second) by model and lane:"]
        agg = rates.groupby(["model", "lane"]).agg(jobs=("job", "size"), runs=("runs", "sum"), steps=("steps", "sum"),
                                                   median=("steps_per_s", "median"), min=("steps_per_s", "min"),
                                                   max=("steps_per_s", "max"))
        lines.append(agg.round(1).to_string())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deeptheory timeline", description=__doc__.split("\n\n")[0])
    parser.add_argument("-d", "--directory", type=Path, default=Path("."), help="the build folder (default .)")
    parser.add_argument("--top", type=int, default=10, help="how many of the largest jobs to list (default 10)")
    parser.add_argument("--figure", type=Path, help="also draw the timeline to this PNG")
    parser.add_argument("--csv", type=Path, help="also write the breakdown per kind to this CSV")
    parser.add_argument("--jobs", type=Path, help="also write one row per job to this CSV")
    args = parser.parse_args(argv)
    if not (args.directory / "benchmarks").is_dir():
        print(f"deeptheory timeline: {args.directory} has no benchmarks/ folder: not a build folder, "
              f"or nothing built yet", file=sys.stderr)
        return 2
    s = summary(args.directory)
    print(text(s, args.top))
    if args.figure:
        draw(s["jobs"], s["throughput"], f"{s['label']}; {headline(s['jobs'])}", args.figure)
    if args.csv:
        s["breakdown"].to_csv(args.csv, index=False)
    if args.jobs:
        s["jobs"].to_csv(args.jobs, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
