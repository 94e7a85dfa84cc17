"""Which runs a Snakemake request trains in packed mode (deeptheory.grid), on the quick profile."""

from __future__ import annotations

import pytest
import yaml

from conftest import ROOT
from deeptheory import grid, paths


@pytest.fixture(scope="module")
def plan():
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    return grid.plan({**config, "profile": "quick"})


def test_a_request_names_the_targets_whose_runs_it_needs(plan):
    everything = set(plan.runs)
    assert grid.targets_asked(plan, []) == everything                       # the default target
    assert grid.targets_asked(plan, ["all"]) == everything
    assert grid.targets_asked(plan, ["results/claims.csv"]) == everything
    assert grid.targets_asked(plan, ["results/t3-err-vs-w/figure.png"]) == {"t3-err-vs-w"}
    assert grid.targets_asked(plan, ["results/t3-err-vs-w/table.csv", "results/t3-minnorm/figure.png"]) == {
        "t3-err-vs-w"}                                                      # a synthetic target reads no run
    assert grid.targets_asked(plan, [str(ROOT / "results" / "x")]) == everything  # outside the work dir


def test_a_pack_job_holds_exactly_the_asked_targets_runs_of_its_key(plan):
    key = "cifar10/allconv5_w8_b128"
    readers = plan.readers(key)
    assert {"t3-err-vs-n", "t3-err-vs-n-random", "t3-err-vs-w"} <= set(readers)
    assert grid.pack_label(plan, key, set(plan.runs)) == paths.ALL
    assert grid.pack_members(plan, paths.pack_job(key, paths.ALL)) == plan.packs[key]
    label = grid.pack_label(plan, key, {"t3-err-vs-w", "m100-err-vs-neurons"})
    assert label == "t3-err-vs-w"
    members = grid.pack_members(plan, paths.pack_job(key, label))
    assert members == [s.run_id for s in plan.runs_of("t3-err-vs-w") if paths.pack_key(s) == key]
    both = grid.pack_members(plan, paths.pack_job(key, "t3-err-vs-n+t3-err-vs-w"))
    assert set(both) == {s.run_id for t in ("t3-err-vs-n", "t3-err-vs-w") for s in plan.runs_of(t)
                         if paths.pack_key(s) == key}
    # a key read by one target only is that target's pack: "all"
    only_w = "cifar10/allconv5_w3_b128"
    assert grid.pack_label(plan, only_w, {"t3-err-vs-w"}) == paths.ALL
    with pytest.raises(grid.ConfigError, match="not data-set targets"):
        grid.pack_members(plan, paths.pack_job(key, "t3-minnorm"))
