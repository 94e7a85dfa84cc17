"""``deeptheory audit``: check every artifact of a build from the project's files alone,
without training anything.

    deeptheory audit                                      # the build in the current folder
    deeptheory audit --configfile config/offline.yaml     # as the offline build was run
    deeptheory audit --config profile=paper device=cuda   # as `snakemake --config ...` was run
    deeptheory audit --json                               # one JSON object, for machines
    python -m deeptheory.audit --directory /path/to/build

It reads the config as the workflow did, from the build folder: its ``config/config.yaml``
(the workflow's own when the folder has none: a build run with ``--directory``), each
``--configfile`` in turn (a relative path is looked for in the build folder, then in the
current one) and the ``--config`` overrides (deeptheory.configcheck); then it checks

- raw data: each archive on disk, and each one a ``data/raw/<set>/verified.json`` vouches
  for, against the md5 pinned in config and against DVC's own record (the ``.dvc`` file
  beside it);
- results: every file under ``results/`` against its folder's manifest of sha256 sums
  (``deeptheory.manifest``, written when the file was); a file that changed, one that is
  missing and one no manifest knows (``results/checkpoints/`` is working state and skipped);
- targets: each target's inputs against the runs its provenance says it read (their
  metrics' sha256 at build time), its config entry and the claim thresholds against the
  current config, and the claims table against the targets' claims;
- runs: each run's spec against the spec the current config gives its id
  (``deeptheory.grid.plan``): a run trained with other settings is stale;
- outputs: every file the config asks for (each target's, each run's, each analysis
  unit's, the claims table): one that is absent (a build that stopped, a deleted folder)
  is an error;
- code: the revision each artifact was made from against the build folder's checkout (the
  workflow's when the folder is none), as a note with the files changed in between.

One row per problem, each naming what it affects (the targets that read it and the claims
table), then a summary. The exit status is 0 only when no row is an error; notes (code
revisions, runs no target of the profile reads) do not fail it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from . import configcheck, fetch, grid, manifest, paths
from .targets import REGISTRY

REPO = configcheck.REPO
DEFAULT_CONFIG = configcheck.DEFAULT_CONFIG
CLAIMS_TABLE = "claims table"
# Files under results/ that the build does not write through deeptheory.atomic and that
# are not artifacts of a job: Snakemake's report, when asked for there.
NOT_RECORDED = {"report.zip", "report.html"}
# What the workflow writes for each target (rule target's outputs, workflow/rules/targets.smk)
# and the claims table (rule claims'); a run's: paths.RUN_FILES.
TARGET_FILES = ("figure.png", "figure.pdf", "table.csv", "table.md", "claims.csv", "provenance.json")
CLAIMS_FILES = ("claims.csv", "claims.md")


@dataclass
class Problem:
    severity: str           # "error" (something is wrong) or "note" (worth knowing)
    kind: str               # raw-data, modified, missing, unknown, stale, config, code, orphan
    path: str               # the file or folder, relative to the build folder
    detail: str
    affects: list[str] = field(default_factory=list)  # target ids, and the claims table


# ---------------------------------------------------------------------------- config

load_config = configcheck.load_config  # the config the workflow sees


def config_files(workdir: Path, configfiles=()) -> list[Path]:
    """The files a build in ``workdir`` read: its config/config.yaml (the workflow's when it
    has none), then each --configfile, a relative one found in the build folder first."""
    workdir = Path(workdir)
    base = workdir / configcheck.BASE
    found = [base if base.exists() else DEFAULT_CONFIG]
    for f in map(Path, configfiles):
        found.append(f if f.is_absolute() or not (workdir / f).exists() else workdir / f)
    return found


# ----------------------------------------------------------------------------- audit

class Audit:
    def __init__(self, workdir: Path, config: dict):
        self.workdir = Path(workdir).resolve()
        self.config = config
        self.results = self.workdir / paths.RESULTS
        self.problems: list[Problem] = []
        self.counts = defaultdict(int)
        self.plan = None
        try:
            self.plan = grid.plan(config)
        except (grid.ConfigError, KeyError) as err:
            self.add("error", "config", "config", f"the config gives no plan: {err}")
        self.target_prov = self._read_targets()
        self.readers = self._readers()

    # -- helpers
    def add(self, severity, kind, path, detail, affects=()):
        order = sorted(set(affects) - {CLAIMS_TABLE}) + ([CLAIMS_TABLE] if CLAIMS_TABLE in affects else [])
        self.problems.append(Problem(severity, kind, str(path), detail, order))

    def rel(self, path: Path) -> str:
        try:
            return str(Path(path).resolve().relative_to(self.workdir))
        except ValueError:
            return str(path)

    def _read_targets(self) -> dict:
        """target id -> its provenance, for every target folder with one."""
        out = {}
        if not self.results.is_dir():
            return out
        for prov in sorted(self.results.glob("*/provenance.json")):
            try:
                data = json.loads(prov.read_text())
            except ValueError:
                continue  # the manifest check names the file
            if "target" in data:
                out[data["target"]] = data
        return out

    def _readers(self) -> dict:
        """run id -> the targets that read it (by their provenance, and by the plan)."""
        readers = defaultdict(set)
        for tid, prov in self.target_prov.items():
            for p in prov.get("runs", []):
                readers[run_id_of(Path(p))].add(tid)
        if self.plan is not None:
            for tid, specs in self.plan.runs.items():
                for s in specs:
                    readers[s.run_id].add(tid)
        return readers

    def run_affects(self, run_id: str) -> list[str]:
        targets = self.readers.get(run_id, set())
        return sorted(targets) + ([CLAIMS_TABLE] if targets else [])

    def dataset_affects(self, dataset: str) -> list[str]:
        targets = set()
        if self.plan is not None:
            for tid, specs in self.plan.runs.items():
                if any(s.dataset == dataset for s in specs):
                    targets.add(tid)
        for run_id, tids in self.readers.items():
            if run_id.split("/", 1)[0] == dataset:
                targets |= tids
        return sorted(targets) + ([CLAIMS_TABLE] if targets else [])

    def path_affects(self, path: Path) -> list[str]:
        parts = Path(self.rel(path)).parts
        if len(parts) >= 4 and parts[:2] == ("results", "runs"):
            return self.run_affects(f"{parts[2]}/{parts[3]}")
        if len(parts) >= 8 and parts[:2] == ("results", "packs"):  # results/packs/<pack job>/<run id>/
            return self.run_affects(f"{parts[5]}/{parts[6]}")
        if len(parts) >= 4 and parts[:2] == ("results", "analyses"):  # results/analyses/<target>/<unit>.csv
            return [parts[2], CLAIMS_TABLE]
        if len(parts) == 2 and parts[1] in ("claims.csv", "claims.md"):
            return [CLAIMS_TABLE]
        if len(parts) >= 3 and parts[0] == "results" and (parts[1] in REGISTRY or parts[1] in self.target_prov):
            return [parts[1]] + ([CLAIMS_TABLE] if parts[-1] == "claims.csv" else [])
        return []

    # -- checks
    def check_raw_data(self) -> None:
        used = {s.dataset for s in self.plan.specs.values()} if self.plan is not None else set()
        for dataset, ds_cfg in (self.config.get("datasets") or {}).items():
            raw = self.workdir / "data" / "raw" / dataset
            # Every archive on disk is checked, verified.json or not: removing the marker must
            # not hide a changed archive (the workflow's start check does the same).
            fetched = (raw / "verified.json").exists()
            if not fetched and not any((raw / f).exists() for f in ds_cfg["files"]):
                if dataset in used:
                    self.add("note", "raw-data", self.rel(raw), f"data set '{dataset}' is not fetched yet",
                             self.dataset_affects(dataset))
                continue
            for filename, file_cfg in ds_cfg["files"].items():
                path = raw / filename
                if not path.exists() and not fetched:
                    continue  # not fetched yet: the build's fetch will
                self.counts["raw files"] += 1
                affects = self.dataset_affects(dataset)
                if not path.exists():
                    self.add("error", "raw-data", self.rel(path), f"archive of data set '{dataset}' is missing "
                             f"(to fetch it again: {fetch.refetch_command(dataset)})", affects)
                    continue
                problem = check_archive(path, dataset, filename, ds_cfg)
                if problem:
                    self.add("error", "raw-data", self.rel(path),
                             f"{problem}\n  To fetch it again: {fetch.refetch_command(dataset)}", affects)

    def check_manifests(self) -> None:
        if not self.results.is_dir():
            self.add("error", "missing", "results", "nothing is built yet")
            return
        for folder, dirs, files in os.walk(self.results):
            folder = Path(folder)
            if folder == self.results:
                dirs[:] = [d for d in dirs if d not in manifest.SKIP_DIRS]
            dirs.sort()
            known = manifest.read(folder)
            on_disk = set(files) - manifest.NOT_ARTIFACTS
            if folder == self.results:
                on_disk -= NOT_RECORDED
            for name in sorted(on_disk):
                path = folder / name
                self.counts["results files"] += 1
                if name.startswith(".") and name.endswith(".tmp"):
                    self.add("error", "unknown", self.rel(path), "temporary file of a write that never "
                             "finished (an interrupted job); delete it", self.path_affects(path))
                elif name not in known:
                    why = ("the build did not write it" if known else "its folder has no manifest: not written by "
                           "the build, or by one older than manifests")
                    self.add("error", "unknown", self.rel(path), f"no manifest knows this file: {why}",
                             self.path_affects(path))
                elif manifest.sha256_file(path) != known[name]["sha256"]:
                    self.add("error", "modified", self.rel(path), f"sha256 differs from the one recorded when it "
                             f"was written ({known[name]['recorded']}): changed since", self.path_affects(path))
            for name in sorted(set(known) - set(files)):
                self.add("error", "missing", self.rel(folder / name), f"written {known[name]['recorded']} and "
                         f"recorded in the manifest, now gone", self.path_affects(folder / name))

    def check_targets(self) -> None:
        profile = self.config.get("profile")
        for tid, prov in sorted(self.target_prov.items()):
            where = self.rel(self.results / tid / "provenance.json")
            affects = [tid, CLAIMS_TABLE]
            if self.plan is not None and tid not in self.plan.targets:
                self.add("note", "orphan", where, f"target {tid} is not in profile {profile!r}")
                continue
            sums = prov.get("runs_sha256")
            if sums is None and prov.get("runs"):
                self.add("note", "stale", where, "built before targets recorded their runs' checksums: "
                         "cannot tell whether its runs changed since", affects)
            for p, sha in (sums or {}).items():
                path = self.workdir / p
                if not path.exists():
                    self.add("error", "stale", where, f"run {run_id_of(Path(p))} it read is gone ({p})", affects)
                elif manifest.sha256_file(path) != sha:
                    self.add("error", "stale", where, f"run {run_id_of(Path(p))} changed since the target was "
                             f"built (retrained or modified): rebuild {tid}", affects)
            if self.plan is None:
                continue
            want = {str(paths.run_dir(s.run_id) / "metrics.csv") for s in self.plan.runs_of(tid)}
            have = set(prov.get("runs", []))
            if want != have:
                gone = sorted(run_id_of(Path(p)) for p in have - want)
                new = sorted(run_id_of(Path(p)) for p in want - have)
                self.add("error", "stale", where, "the config's grid changed: "
                         + "; ".join(([f"reads runs it no longer names: {', '.join(gone)}"] if gone else [])
                                     + ([f"lacks runs it now names: {', '.join(new)}"] if new else [])), affects)
            built = prov.get("config", {})
            section = "targets" if REGISTRY.get(tid) and REGISTRY[tid].trains else "synthetic"
            if built.get("target") != self.plan.targets[tid]:
                self.add("error", "stale", where, f"config changed since the target was built: "
                         f"{diff(built.get('target'), self.plan.targets[tid], f'profiles.{profile}.{section}.{tid}')}",
                         affects)
            if built.get("claims") != self.config.get("claims"):
                self.add("error", "stale", where, f"claim thresholds changed since the target was built: "
                         f"{diff(built.get('claims'), self.config.get('claims'), 'claims')}", affects)
            if built.get("profile") != profile:
                self.add("error", "stale", where, f"built under profile {built.get('profile')!r}, config now "
                         f"selects {profile!r}", affects)
        self.check_claims_table()

    def check_claims_table(self) -> None:
        table = self.results / "claims.csv"
        if not table.exists():
            return
        rows = read_rows(table)
        for tid in sorted(self.target_prov):
            if self.plan is not None and tid not in self.plan.targets:
                continue
            mine = self.results / tid / "claims.csv"
            if mine.exists() and not set(read_rows(mine)) <= set(rows):
                self.add("error", "stale", self.rel(table), f"its rows of {tid} differ from {self.rel(mine)}: "
                         f"gather the claims again", [tid, CLAIMS_TABLE])
        if self.plan is not None:
            have = {r[0].split(":", 1)[0] for r in rows}
            for tid in sorted((have & set(self.plan.targets)) - set(self.target_prov)):
                self.add("error", "stale", self.rel(table), f"holds claims of {tid}, whose target folder "
                         f"results/{tid}/ has no provenance: rebuild {tid}, then the claims", [tid, CLAIMS_TABLE])
            for tid in sorted(have - set(self.plan.targets)):
                self.add("error", "stale", self.rel(table), f"holds claims of {tid}, which profile "
                         f"{self.config.get('profile')!r} does not build", [CLAIMS_TABLE])

    def check_runs(self) -> None:
        profile = self.config.get("profile")
        for prov_path in sorted(self.results.glob("runs/*/*/provenance.json")):
            try:
                prov = json.loads(prov_path.read_text())
            except ValueError:
                continue
            run_id = prov.get("run_id") or run_id_of(prov_path)
            where = self.rel(prov_path)
            self.counts["runs"] += 1
            if self.plan is None:
                continue
            if run_id not in self.plan.specs:
                self.add("note", "orphan", where, f"run {run_id} is in no target of profile {profile!r}",
                         self.run_affects(run_id))
                continue
            built = prov.get("config", {}).get("spec", {})
            want = self.plan.specs[run_id].to_dict()
            changed = sorted(k for k in set(built) | set(want) if built.get(k) != want.get(k))
            if changed:
                keys = [f"{k} {built.get(k)!r} -> {want.get(k)!r}" + (f" (config key {key})" if key else "")
                        for k in changed for key in [self.plan.origin(run_id, k)]]  # the key the plan read
                self.add("error", "config", where, f"run {run_id} was trained with settings the config no "
                         f"longer gives: {'; '.join(keys)}", self.run_affects(run_id))

    def check_outputs(self) -> None:
        """Every file the config asks for; one row per run, target or analysis that lacks any
        (a file its folder's manifest knows is named by check_manifests)."""
        if self.plan is None or not self.results.is_dir():  # nothing built: check_manifests says so
            return
        wanted = [(paths.run_dir(r), paths.RUN_FILES, f"run {r}", self.run_affects(r)) for r in sorted(self.plan.specs)]
        for tid, jobs in sorted(self.plan.jobs.items()):
            wanted += [(paths.analysis(tid, j, ".csv").parent, (paths.analysis(tid, j, ".csv").name,
                        paths.analysis(tid, j, ".npz").name), f"analysis of {tid}, job {j}", [tid, CLAIMS_TABLE])
                       for j in jobs]
        wanted += [(Path(paths.RESULTS) / tid, TARGET_FILES, f"target {tid}", [tid, CLAIMS_TABLE])
                   for tid in sorted(self.plan.targets)]
        wanted.append((Path(paths.RESULTS), CLAIMS_FILES, "the claims table", [CLAIMS_TABLE]))
        for folder, names, what, affects in wanted:
            known = manifest.read(self.workdir / folder)
            absent = [n for n in names if not (self.workdir / folder / n).exists() and n not in known]
            self.counts["outputs"] += len(names)
            if absent:
                where = folder / absent[0] if len(absent) == 1 else folder
                self.add("error", "missing", str(where), f"{what}: the config asks for "
                         f"{', '.join(absent)}, which the build has not made (a build that stopped, or a deleted "
                         f"file or folder): build again", affects)

    def check_code(self) -> None:
        # The build folder's checkout ran the build; a folder that is none was built with
        # --directory by the workflow of this library's checkout.
        checkout = self.workdir if git(["rev-parse", "HEAD"], self.workdir) else REPO
        head = git(["rev-parse", "HEAD"], checkout)
        if head is None:
            self.add("note", "code", str(self.workdir), "not a git checkout: code revisions not compared")
            return
        by_commit, dirty = defaultdict(list), []
        provs = list(self.results.glob("runs/*/*/provenance.json")) + [
            self.results / tid / "provenance.json" for tid in self.target_prov]
        for p in sorted(provs):
            try:
                code = json.loads(p.read_text()).get("code", {})
            except ValueError:
                continue
            if code.get("commit") and code["commit"] != head:
                by_commit[code["commit"]].append(self.rel(p))
            if code.get("dirty"):
                dirty.append(self.rel(p))
        for commit, files in sorted(by_commit.items()):
            changed = git(["diff", "--name-only", commit, head], checkout)
            what = (f"files changed since: {', '.join(changed.split())}" if changed
                    else "no tracked file changed" if changed is not None else f"commit {commit} is not in this "
                    f"repository")
            self.add("note", "code", files[0] if len(files) == 1 else f"{len(files)} provenance files",
                     f"made at commit {commit[:12]}, code now at {head[:12]}; {what}",
                     sorted({a for f in files for a in self.path_affects(self.workdir / f)}))
        if dirty:
            self.add("note", "code", dirty[0] if len(dirty) == 1 else f"{len(dirty)} provenance files",
                     "made from a working tree with uncommitted changes: the commit alone does not say what ran")

    def run(self) -> list[Problem]:
        self.check_raw_data()
        self.check_manifests()
        self.check_outputs()
        if self.results.is_dir():
            self.check_targets()
            self.check_runs()
            self.check_code()
        return self.problems


def run_id_of(path: Path) -> str:
    """The run id of a file in a run's folder (results/runs/<data set>/<run>/...)."""
    parts = Path(path).parts
    i = len(parts) - 1 - parts[::-1].index("runs") if "runs" in parts else -1
    return "/".join(parts[i + 1 : i + 3]) if i >= 0 else str(path)


def check_archive(path: Path, dataset: str, filename: str, ds_cfg: dict) -> str | None:
    """Why ``path`` fails its checks (the fetch step's message), or None if it passes:
    the checksums pinned in config, then DVC's record beside it."""
    file_cfg = ds_cfg["files"][filename] or {}
    source, key = fetch.file_source(dataset, ds_cfg, filename)
    try:
        fetch.verify(path, dataset, filename, file_cfg, source, key)
    except fetch.DataSourceError as err:
        return str(err)
    dvc_file = path.with_name(path.name + ".dvc")
    if dvc_file.exists():
        try:
            outs = yaml.safe_load(dvc_file.read_text()).get("outs", [])
            recorded = next((o.get("md5") for o in outs if o.get("path") == path.name), None)
        except (ValueError, AttributeError, yaml.YAMLError):
            recorded = None
        if recorded and recorded != fetch.md5_file(path):
            return (f"{filename} of data set '{dataset}' differs from DVC's record in {dvc_file.name}: expected "
                    f"{recorded}, actual {fetch.md5_file(path)}")
    return None


def diff(old, new, prefix: str) -> str:
    """The config keys under ``prefix`` whose value differs between ``old`` and ``new``."""
    if isinstance(old, dict) and isinstance(new, dict):
        parts = [diff(old.get(k), new.get(k), f"{prefix}.{k}") for k in sorted(set(old) | set(new))
                 if old.get(k) != new.get(k)]
        return "; ".join(parts)
    return f"config key {prefix}: {old!r} -> {new!r}"


def read_rows(path: Path) -> list[tuple]:
    with open(path, newline="") as f:
        return [tuple(r) for r in csv.reader(f)][1:]


def git(args: list[str], cwd: Path = REPO) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


# ------------------------------------------------------------------------------- CLI

def audit(workdir=".", configfiles=(), overrides=None) -> list[Problem]:
    files = config_files(workdir, configfiles)
    return Audit(Path(workdir), load_config(files[1:], files[0], overrides)).run()


def format_rows(problems: list[Problem]) -> str:
    lines = []
    for p in problems:
        head = f"{p.severity.upper():5}  {p.kind:8}  {p.path}"
        body = p.detail.replace("\n", "\n" + " " * 17)
        lines.append(f"{head}\n{' ' * 17}{body}" + (f"\n{' ' * 17}affects: {', '.join(p.affects)}" if p.affects else ""))
    return "\n".join(lines)


def add_arguments(ap: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The audit's options, on its own parser or on a console script's subcommand."""
    ap.add_argument("--directory", "-d", default=".", help="the build folder (holds data/ and results/)")
    ap.add_argument("--configfile", action="append", default=[], nargs="+",
                    help="config files merged over config/config.yaml, as given to snakemake")
    ap.add_argument("--config", action="append", default=[], nargs="+", metavar="KEY=VALUE",
                    help="config values set on snakemake's command line (--config profile=paper ...)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    return ap


def main(args=None) -> int:
    """Audit as ``args`` ask (parsed by add_arguments' options, or a list of arguments)."""
    if not isinstance(args, argparse.Namespace):
        ap = argparse.ArgumentParser(prog="deeptheory audit", description=__doc__.split("\n\n")[0])
        args = add_arguments(ap).parse_args(args)
    workdir = Path(args.directory)
    if not workdir.is_dir():
        print(f"deeptheory audit: no build folder {workdir}", file=sys.stderr)
        return 2
    files = config_files(workdir, [f for group in args.configfile for f in group])
    try:
        overrides = configcheck.parse_overrides([c for group in args.config for c in group])
        config = load_config(files[1:], files[0], overrides)
    except Exception as err:  # noqa: BLE001 (a config that does not load or validate)
        print(f"deeptheory audit: the config does not load: {err}", file=sys.stderr)
        return 2
    a = Audit(workdir, config)
    problems = a.run()
    errors = [p for p in problems if p.severity == "error"]
    notes = [p for p in problems if p.severity == "note"]
    read = [str(f) for f in files] + ([f"--config {' '.join(f'{k}={v}' for k, v in overrides.items())}"]
                                      if overrides else [])
    wanted = len(a.plan.targets) if a.plan is not None else 0
    summary = {"directory": str(a.workdir), "config": read, "errors": len(errors), "notes": len(notes),
               "checked": dict(a.counts), "targets": len(a.target_prov), "targets_asked": wanted,
               "ok": not errors}
    if args.json:
        print(json.dumps({"ok": not errors, "summary": summary, "problems": [asdict(p) for p in problems]},
                         indent=2))
    else:
        if problems:
            print(format_rows(problems))
            print()
        checked = ", ".join(f"{v} {k}" for k, v in a.counts.items())
        print(f"config: {' + '.join(read)}")
        print(f"audit of {a.workdir}: {'OK' if not errors else 'FAILED'}: {len(errors)} error(s), {len(notes)} "
              f"note(s); checked {checked or 'nothing'}, {len(a.target_prov)} of {wanted} targets built")
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
