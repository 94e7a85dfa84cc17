"""Which pack folder a run's files come from (deeptheory.packing): read from the finished
runs' records, the same whatever the folders' dates, on the quick profile."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from conftest import ROOT
from deeptheory import grid, manifest, packing, paths

KEY = "cifar10/allconv5_w8_b128"


@pytest.fixture(scope="module")
def plan():
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    return grid.plan({**config, "profile": "quick"})


def finish(plan, job: str, root, recorded: str, spec_of=None) -> None:
    """A pack folder holding each run its job trains, finished from its spec, its provenance
    recorded in the folder's manifest at ``recorded``."""
    for run_id in grid.pack_members(plan, job):
        spec = (spec_of or plan.specs.get)(run_id)
        folder = paths.pack_dir(job, root) / run_id
        folder.mkdir(parents=True)
        (folder / "metrics.csv").write_text("epoch\n1\n")
        (folder / "provenance.json").write_text(json.dumps({"config": {"spec": spec.to_dict()}}))
        (folder / manifest.NAME).write_text(json.dumps({"files": {"provenance.json": {"recorded": recorded}}}))


def date(folder, when: float) -> None:
    os.utime(folder, (when, when))


def test_a_run_comes_from_the_pack_that_trained_it_whatever_the_folders_dates(plan, tmp_path):
    root = tmp_path / "results"
    w_only = paths.pack_job(KEY, grid.pack_label(plan, KEY, {"t3-err-vs-w"}))
    everything = paths.pack_job(KEY, paths.ALL)
    finish(plan, w_only, root, "2026-01-01T00:00:00+00:00")    # trained the t3-err-vs-w runs first ...
    finish(plan, everything, root, "2026-02-01T00:00:00+00:00")  # ... which a later pack linked in
    run = grid.pack_members(plan, w_only)[0]
    other = next(r for r in grid.pack_members(plan, everything) if r not in grid.pack_members(plan, w_only))
    for older, newer in ((w_only, everything), (everything, w_only)):  # either order of mtimes
        date(paths.pack_dir(older, root), 1e9)
        date(paths.pack_dir(newer, root), 2e9)
        sources = packing.PackSources(plan, root)
        assert sources.folder(plan.specs[run], set()) == paths.pack_dir(w_only, root)
        assert sources.folder(plan.specs[other], set()) == paths.pack_dir(everything, root)


def test_equal_records_go_to_the_first_label_and_a_stale_folder_is_no_source(plan, tmp_path):
    root = tmp_path / "results"
    w_only = paths.pack_job(KEY, grid.pack_label(plan, KEY, {"t3-err-vs-w"}))
    everything = paths.pack_job(KEY, paths.ALL)
    for job in (w_only, everything):
        finish(plan, job, root, "2026-01-01T00:00:00+00:00")
    run = grid.pack_members(plan, w_only)[0]
    first = min((w_only, everything), key=lambda j: paths.split_pack_job(j)[1])
    assert packing.PackSources(plan, root).folder(plan.specs[run], set()) == paths.pack_dir(first, root)
    # a folder whose runs were trained from other settings holds nothing current
    stale = tmp_path / "stale"
    other_spec = plan.specs[grid.pack_members(plan, everything)[-1]]
    finish(plan, w_only, stale, "2026-01-01T00:00:00+00:00", spec_of=lambda r: other_spec)
    sources = packing.PackSources(plan, stale)
    assert sources.current_members(w_only) == frozenset()
    asked = {"t3-err-vs-w"}
    assert sources.folder(plan.specs[run], asked) == paths.pack_dir(w_only, stale)  # its asked pack job


def test_with_no_finished_folder_a_run_comes_from_the_pack_job_of_the_asked_targets(plan, tmp_path):
    run = grid.pack_members(plan, paths.pack_job(KEY, "t3-err-vs-w"))[0]
    sources = packing.PackSources(plan, tmp_path / "results")
    assert sources.folder(plan.specs[run], {"t3-err-vs-w"}).name == "t3-err-vs-w"
    assert sources.folder(plan.specs[run], set(plan.runs)).name == paths.ALL
