"""Which pack folder a run's files come from (packed mode; rule run_from_pack's input).

The DAG must be a pure function of config, the asked-for targets and the finished runs'
records, so the choice reads records, never file dates: a pack folder is current when it
holds every run its job trains, each finished from the current spec (paths.is_done), and
of the current folders holding a run the one that trained it wins, read from the folder's
manifest (the pack that trained a run recorded its files before any later pack linked
them in; equal records go to the first label). Taking any other folder would make
run_from_pack, and every target reading the run, look stale and rerun.
"""

from __future__ import annotations

from pathlib import Path

from . import grid, manifest, paths
from .spec import RunSpec


class PackSources:
    """The pack folders of one plan under ``root``, each folder read once per DAG."""

    def __init__(self, plan: grid.Plan, root: str | Path = paths.RESULTS):
        self.plan, self.root = plan, root
        self._members: dict[str, frozenset] = {}

    def current_members(self, job: str) -> frozenset:
        """The runs of results/packs/<job>/ if it holds every run its job trains, each
        finished from the current spec; else none."""
        if job not in self._members:
            try:
                members = grid.pack_members(self.plan, job)
            except grid.ConfigError:  # a folder of another profile's or an older layout
                members = []
            folder = paths.pack_dir(job, self.root)
            done = all(paths.is_done(folder / r, self.plan.specs[r]) for r in members)
            self._members[job] = frozenset(members if done else ())
        return self._members[job]

    def trained_at(self, folder: Path, run_id: str) -> str:
        """When ``folder`` recorded the run's provenance (written last, by the pack that
        trained it or the one that linked it in); "~" (after every date) when unrecorded."""
        return (manifest.read(folder / run_id).get("provenance.json") or {}).get("recorded") or "~"

    def folder(self, spec: RunSpec, asked: set) -> Path:
        """The pack folder ``spec``'s run comes from: the current folder that trained it
        (asking again for a built target then does nothing), else the pack job of the
        targets ``asked`` for (grid.targets_asked), which trains only their runs."""
        key = paths.pack_key(spec)
        holding = [f for f in sorted(paths.pack_dir(key, self.root).glob("*/"))
                   if spec.run_id in self.current_members(paths.pack_job(key, f.name))]
        if holding:
            return min(holding, key=lambda f: self.trained_at(f, spec.run_id))  # sorted: ties go to the first label
        return paths.pack_dir(paths.pack_job(key, grid.pack_label(self.plan, key, asked)), self.root)
