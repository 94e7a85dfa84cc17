"""Which runs a Snakemake request trains in packed mode (deeptheory.grid), on the quick profile."""

from __future__ import annotations

import pytest

from conftest import ROOT, checkout_config
from deeptheory import configcheck, grid, paths


@pytest.fixture(scope="module")
def plan():
    return grid.plan(checkout_config(profile="quick"))


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


def test_comparisons_share_every_setting_but_the_one_they_vary(plan):
    """memo073's comparisons hold everything else fixed: natural vs random labels, init x1 vs
    x10, SGD vs SGDL are runs of one subset, seed and schedule, and they are the very runs
    other targets train at that grid point."""
    margins = {(s.labels, s.init_scale): s for s in plan.runs_of("t3-margins")}
    assert set(margins) == {("natural", 1.0), ("random", 1.0), ("natural", 10.0), ("random", 10.0)}
    fields = lambda s, *skip: {k: v for k, v in s.to_dict().items() if k not in skip}  # noqa: E731
    assert fields(margins["natural", 1.0], "labels", "label_seed") == fields(margins["random", 1.0], "labels",
                                                                               "label_seed")
    assert fields(margins["natural", 1.0], "init_scale") == fields(margins["natural", 10.0], "init_scale")
    # t3-margins trains both inits under one recipe (clip): its x1 net is not t3-err-vs-n's
    assert {s.recipe for s in margins.values()} == {"clip"}
    assert not {s.run_id for s in plan.runs_of("t3-err-vs-n")} & {s.run_id for s in plan.runs_of("t3-margins")}
    sgd, sgdl = sorted(plan.runs_of("t3-sgdl"), key=lambda s: s.noise)
    assert sgd.noise == 0 and sgdl.noise > 0 and fields(sgd, "noise") == fields(sgdl, "noise")
    assert sgdl.run_id == sgd.run_id + f"_sgdl{sgdl.noise:g}"


def test_three_minimizers_share_one_training_set_and_form_one_unit(plan):
    units = plan.units["t3-landscape"]
    # (data sets x labels x 2 training subsets); offline both data sets are one
    assert len(units) == 2 * 2 * 2 or len(units) == 2 * 2
    for lead, members in units.items():
        specs = [plan.specs[r] for r in members]
        base = specs[0].seed
        assert base in (0, grid.SUBSET_STRIDE)
        assert lead == members[0] and [s.seed for s in specs] == [base, base + 1, base + 2]
        assert {s.data_seed for s in specs} == {base} and specs[0].subset_seed is None
        assert len({(s.dataset, s.labels) for s in specs}) == 1
    assert all(members == [lead] for lead, members in plan.units["t3-flatness"].items())
    assert "t3-err-vs-n" not in plan.units   # a target reading metrics only has no analysis jobs
    # m100-norm-loss measures every net in one job (unit "all"): one unit holding all its runs
    (members,) = plan.units["m100-norm-loss"].values()
    assert sorted(members) == sorted(s.run_id for s in plan.runs_of("m100-norm-loss")) and len(members) > 1


def test_analysis_jobs_hold_one_unit_or_every_unit_of_a_target_on_one_data_set():
    """Profile key analysis_jobs: 'unit' (paper) gives a job per unit; 'target' (quick) one job
    per target and data set, named by its first unit, holding those units whole."""
    quick = grid.plan(checkout_config())  # quick, CIFAR-10 and MNIST: two data sets
    assert quick.targets and checkout_config()["profiles"]["quick"]["analysis_jobs"] == "target"
    for tid, units in quick.units.items():
        jobs = quick.jobs[tid]
        assert sorted(u for us in jobs.values() for u in us) == sorted(units)   # every unit in one job
        for job, us in jobs.items():
            assert job == us[0] and len({quick.specs[units[u][0]].dataset for u in us}) == 1
            assert quick.job_units(tid, job) == {u: units[u] for u in us}
        assert len(jobs) == len({quick.specs[m[0]].dataset for m in units.values()})
    assert len(quick.units["t3-landscape"]) > len(quick.jobs["t3-landscape"])
    paper = grid.plan(checkout_config(profile="paper"))
    assert all(jobs == {u: [u] for u in paper.units[tid]} for tid, jobs in paper.jobs.items())
    with pytest.raises(grid.ConfigError, match="no analysis job"):
        quick.job_units("t3-landscape", "cifar10/nothing")


def test_two_asked_data_sets_standing_in_as_one_train_one_grid():
    config = checkout_config()
    offline = {**config, "substitute": {"cifar10": "fashion-mnist", "mnist": "fashion-mnist"},
               "datasets": {**config["datasets"], "fashion-mnist": config["datasets"]["fashion-mnist"]}}
    plan = grid.plan(offline)
    landscape = plan.runs_of("t3-landscape")
    assert len(landscape) == len({s.run_id for s in landscape}) == 2 * 2 * 3
    assert {s.dataset for s in landscape} == {"fashion-mnist"}
    assert grid.dataset_used(plan.targets["t3-landscape"], offline["substitute"]) == ["fashion-mnist"] * 2


def test_a_recipe_overrides_the_profile_train_settings_for_its_runs_only():
    profile = {"seeds": [0], "label_seed": 0, "n_test": None,
               "train": {"lr": 0.05, "momentum": 0.9, "batch_size": 128, "max_epochs": 300},
               "recipes": {"gd": {"lr": 0.1, "momentum": 0.0, "batch_size": "full"},
                           "zhang": {"lr": 0.01, "lr_decay": 0.95, "weight_decay": 5e-4}}}
    tcfg = {"dataset": "cifar10", "model": "cnn3", "widths": [8], "N": [500], "labels": "natural",
            "recipe": [None, "gd", "zhang"]}
    plain, gd, zhang = grid.run_specs("m100-norm-loss", tcfg, profile)
    assert (plain.recipe, plain.lr, plain.batch_size, plain.lr_decay) == (None, 0.05, 128, 1.0)
    assert (gd.lr, gd.momentum, gd.batch_size, gd.max_epochs) == (0.1, 0.0, 500, 300)   # full batch: N
    assert (zhang.lr, zhang.lr_decay, zhang.weight_decay, zhang.momentum) == (0.01, 0.95, 5e-4, 0.9)
    assert len({plain.run_id, gd.run_id, zhang.run_id}) == 3 and gd.run_id.endswith("_rgd")
    assert paths.pack_key(gd) != paths.pack_key(plain)   # a full batch is its own minibatch size
    with pytest.raises(grid.ConfigError, match=r"recipe 'sgd'.*profiles.quick.recipes"):
        grid.run_specs("m100-norm-loss", {**tcfg, "recipe": "sgd"}, profile, profile_name="quick")


def test_batch_statistics_runs_pack_by_N_and_need_whole_batches():
    profile = {"seeds": [0], "label_seed": 0, "n_test": None,
               "train": {"lr": 0.05, "momentum": 0.9, "batch_size": 100, "max_epochs": 10}}
    tcfg = {"dataset": "cifar10", "model": "resnet", "widths": [4], "N": [200, 400], "labels": "natural"}
    a, b = grid.run_specs("t3-archs", tcfg, profile)
    assert paths.pack_key(a) != paths.pack_key(b) and paths.pack_key(a).endswith("_N200")
    with pytest.raises(grid.ConfigError, match=r"profiles.quick.targets.t3-archs: model resnet .* N = 250"):
        grid.run_specs("t3-archs", {**tcfg, "N": [250]}, profile, profile_name="quick")
    plain = grid.run_specs("t3-archs", {**tcfg, "model": "mlp", "N": [250, 400]}, profile)
    assert paths.pack_key(plain[0]) == paths.pack_key(plain[1])


def test_every_pack_key_matches_the_pack_wildcard_pattern(plan):
    import re

    paper = grid.plan(checkout_config(profile="paper"))
    for key in [*plan.packs, *paper.packs]:
        assert re.fullmatch(paths.PACK_KEY_REGEX, key), key


def test_a_substitute_list_takes_the_first_stand_in_that_holds_the_targets_largest_n():
    datasets = {"small": {"format": "digits-csv"}, "big": {"format": "idx"}}
    sub = {"mnist": ["small", "big"]}
    assert grid.dataset_used({"dataset": "mnist", "N": [250, 4000]}, sub, datasets) == "small"
    # one grid past 4,000 sends the whole target to the larger set
    assert grid.dataset_used({"dataset": ["mnist"], "N": [250], "grids": [{"N": [5000]}]}, sub, datasets) == ["big"]
    with pytest.raises(grid.ConfigError, match=r"substitute.mnist.*N = 70,000"):
        grid.dataset_used({"dataset": "mnist", "N": [70000]}, sub, datasets)


def test_offline_mnist_is_the_real_5000_digits_where_it_fits():
    plan = grid.plan(checkout_config("offline.yaml"))
    assert {s.dataset for s in plan.runs_of("slides-spectral-margin")} == {"mnist-5k"}
    assert {s.dataset for s in plan.runs_of("t3-err-vs-n")} == {"fashion-mnist"}


# Config errors in one line before any job (deeptheory.configcheck): the file or --config
# that set the key, the key, the bad value and what is allowed; not jsonschema's dump of
# the whole schema and config.
def config_sources(tmp_path, text: str, overrides=None):
    base = configcheck.read_yaml(ROOT / "config" / "config.yaml")
    extra = tmp_path / "extra.yaml"
    extra.write_text(text)
    sources = [("config/config.yaml", base), (str(extra), configcheck.read_yaml(extra))]
    sources += [("--config", overrides)] if overrides else []
    config = {}
    for _, data in sources:
        config = configcheck.merge(config, data)
    return config, sources, extra


def one_line_error(config, sources) -> str:
    with pytest.raises(grid.ConfigError) as err:
        configcheck.validate(config, sources)
    assert "\n" not in str(err.value) and len(str(err.value)) < 300, str(err.value)
    return str(err.value)


def test_an_unknown_key_is_one_line_naming_it_where_it_was_set_and_the_allowed_keys(tmp_path):
    config, sources, _ = config_sources(tmp_path, "profile: quick\n", configcheck.parse_overrides(["widht=3"]))
    msg = one_line_error(config, sources)
    assert msg.startswith("config key widht: unknown key (value 3); allowed here: claims, datasets, device")
    assert msg.endswith("(set in --config)")


def test_a_duplicated_N_is_one_line_naming_the_file_and_key(tmp_path):
    config, sources, extra = config_sources(tmp_path, "profiles:\n  quick:\n    targets:\n"
                                                      "      t3-err-vs-w: {N: [500, 500]}\n")
    msg = one_line_error(config, sources)
    assert msg == (f"config key profiles.quick.targets.t3-err-vs-w.N: [500, 500] repeats 500; give each value once "
                   f"(set in {extra})")


@pytest.mark.parametrize("tid,entry,key,why", [
    ("t3-landscape", "{analysis: {gird: 21}}", "analysis.gird", "unknown key (value 21); allowed here: grid"),
    ("t3-flatness", "{analysis: {epsilon: 0}}", "analysis.epsilon", "0 is not allowed; allowed: > 0"),
    ("t3-perturb", "{analysis: {draws: many}}", "analysis.draws", "'many' is not of type integer"),
    ("t3-err-vs-w", "{analysis: {grid: 21}}", "analysis.grid", "unknown key (value 21); allowed here: none")])
def test_a_misspelt_or_bad_analysis_setting_is_one_line_naming_the_key(tmp_path, tid, entry, key, why):
    """Each analysing target's ``analysis`` keys are the schema's (those its analyser reads),
    of their types and ranges; a target that analyses nothing takes none."""
    config, sources, extra = config_sources(tmp_path, f"profiles:\n  quick:\n    targets:\n      {tid}: {entry}\n")
    assert one_line_error(config, sources) == f"config key profiles.quick.targets.{tid}.{key}: {why} (set in {extra})"


def test_a_bad_value_names_the_allowed_ones(tmp_path):
    config, sources, extra = config_sources(tmp_path, "device: gpu\n")
    assert one_line_error(config, sources) == (f"config key device: 'gpu' is not allowed; allowed: strings matching "
                                               f"^(auto|cpu|cuda(:[0-9]+)?|mps)$ (set in {extra})")


def test_a_malformed_config_file_is_named_with_its_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("profile: quick\nprofiles: {quick: [1, 2\n")
    with pytest.raises(grid.ConfigError, match=rf"^config file {bad}, line 3, column 1: not valid YAML: "):
        configcheck.read_yaml(bad)


def test_an_N_larger_than_the_data_set_is_named_before_any_job():
    config = checkout_config()
    config["profiles"]["quick"]["targets"]["t3-err-vs-w"]["N"] = [60_000]  # MNIST's size, not CIFAR-10's
    with pytest.raises(grid.ConfigError) as err:
        grid.plan({**config, "profile": "quick"})
    assert str(err.value) == ("config key profiles.quick.targets.t3-err-vs-w.N: 60000 is more than the 50,000 "
                              "training images of data set 'cifar10' (format cifar10-python); allowed: 1 to 50000")
    config["profiles"]["quick"]["targets"]["t3-err-vs-w"]["N"] = [50_000]  # the whole training set is fine
    grid.plan({**config, "profile": "quick"})


def test_an_N_larger_than_the_data_set_names_the_file_that_set_it(tmp_path):
    config, sources, extra = config_sources(tmp_path, "profiles:\n  quick:\n    targets:\n"
                                                      "      t3-err-vs-n: {N: [500, 100000]}\n")
    assert one_line_error(config, sources).endswith(f"allowed: 1 to 50000 (set in {extra})")


def test_a_run_that_adds_epochs_to_another_continues_it_and_packs_with_it(plan):
    """quick: each t3-err-vs-n-past-zero run (zero+50) continues t3-err-vs-n's run of its N
    (zero, the same cap and schedule); a pack job for the past-zero target alone trains the
    twins too (the continuation starts from them in the pack, at no extra cost)."""
    past = {s.run_id for s in plan.runs_of("t3-err-vs-n-past-zero")}
    assert set(plan.twins) == past
    assert {plan.specs[t].stop for t in plan.twins.values()} == {"zero"}
    assert set(plan.twins.values()) <= {s.run_id for s in plan.runs_of("t3-err-vs-n")}
    assert plan.continued == set(plan.twins.values())
    key = "cifar10/allconv5_w8_b128"
    members = grid.pack_members(plan, paths.pack_job(key, "t3-err-vs-n-past-zero"))
    assert set(members) == past | {plan.twins[r] for r in past}


def test_the_plan_records_the_config_key_that_set_each_spec_field():
    plan = grid.plan(checkout_config("offline.yaml", profile="quick"))
    archs = "profiles.quick.targets.t3-archs"
    wrn = next(s for s in plan.runs_of("t3-archs") if s.model == "wrn")
    i = next(i for i, g in enumerate(checkout_config()["profiles"]["quick"]["targets"]["t3-archs"]["grids"])
             if g.get("model") == "wrn")
    assert plan.origin(wrn.run_id, "model") == f"{archs}.grids[{i}].model"
    assert plan.origin(wrn.run_id, "width") == f"{archs}.grids[{i}].widths"
    assert plan.origin(wrn.run_id, "N") == f"{archs}.N"              # the grid keeps the entry's N
    assert plan.origin(wrn.run_id, "lr") == f"profiles.quick.recipes.{wrn.recipe}.lr"
    assert plan.origin(wrn.run_id, "momentum") == "profiles.quick.train.momentum"  # the recipe leaves it
    assert plan.origin(wrn.run_id, "dataset") == "substitute.cifar10"  # offline: a stand-in data set
    assert plan.origin(wrn.run_id, "weight_decay") is None             # no key: the code's default
    e30 = plan.runs_of("t3-gen-vs-w")[0]
    assert plan.origin(e30.run_id, "max_epochs") == "profiles.quick.targets.t3-gen-vs-w.stop"
    assert set(plan.origins) == set(plan.specs)


def test_small_runs_fill_groups_by_image_epochs_and_twins_train_alone():
    """grid.run_groups: a run of at most run_max image-epochs (N x max_epochs) joins the
    current group of its data set while the group stays within group_max; larger runs, twins
    and their continuations train alone, as does a group's only run; packed profiles group
    nothing. quick groups its small runs (profile key group_runs)."""
    quick = grid.plan(checkout_config("offline.yaml"))
    sizes = checkout_config()["profiles"]["quick"]["group_runs"]
    grouped = [r for runs in quick.groups.values() for r in runs]
    assert len(grouped) == len(set(grouped)) > len(quick.groups) > 1
    paired = set(quick.twins) | set(quick.twins.values())
    for group, runs in quick.groups.items():
        specs = [quick.specs[r] for r in runs]
        assert len(runs) > 1 and runs == sorted(runs) and {s.dataset for s in specs} == {group.split("/")[0]}
        assert all(s.N * s.max_epochs <= sizes["run_max"] for s in specs) and not paired & set(runs)
        assert sum(s.N * s.max_epochs for s in specs) <= sizes["group_max"]
    alone = [s for r, s in quick.specs.items() if r not in grouped]
    assert any(s.N * s.max_epochs > sizes["run_max"] for s in alone) and paired <= {s.run_id for s in alone}

    specs = {r: quick.specs[r] for r in grouped[:3]}
    size = [s.N * s.max_epochs for s in specs.values()]
    assert grid.run_groups(specs, {}, None) == {}
    assert grid.run_groups(specs, {}, {"run_max": max(size), "group_max": sum(size)}) == {
        f"{specs[grouped[0]].dataset}/group1": grouped[:3]}
    # a budget of the first two: the third starts a group of its own, which is one run, so it trains alone
    assert list(grid.run_groups(specs, {}, {"run_max": max(size), "group_max": size[0] + size[1]}).values()) == [
        grouped[:2]]
    assert list(grid.run_groups(specs, {grouped[2]: grouped[0]}, {"run_max": max(size), "group_max": sum(size)})
                .values()) == []  # only grouped[1] is left: alone
    paper = grid.plan(checkout_config(profile="paper"))
    assert paper.groups == {}
