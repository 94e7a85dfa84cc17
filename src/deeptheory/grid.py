"""Run specs from the config: which runs each target reads, and how they pack.

The DAG plans from here; like every module the workflow imports to plan (``configcheck``,
``targets``' registry, ``paths``, ``spec``, ``fetch``), it imports no pandas, no matplotlib,
no torch, so a dry run stays cheap (tests/test_workflow.py checks).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from dataclasses import dataclass, field
from pathlib import PurePath

from . import paths
from .formats import TRAIN_IMAGES
from .spec import BATCH_STATISTICS, RunSpec, parse_stop, twins
from .targets import REGISTRY, get


class ConfigError(ValueError):
    """A config value the grid cannot use; the message names the config key."""


@dataclass(frozen=True)
class Plan:
    """Every target of a profile, the runs each reads, and the packs those runs form."""
    profile: str
    targets: dict            # id -> its config entry (data-set and synthetic alike)
    runs: dict               # data-set target id -> list of RunSpec
    specs: dict              # run id -> RunSpec (a run two targets read appears once)
    packs: dict              # pack key (paths.pack_key) -> list of run ids
    units: dict = field(default_factory=dict)  # target with an analysis -> {unit id: [run ids]} (unit id: its first run's id)
    jobs: dict = field(default_factory=dict)   # target with an analysis -> {job id: [unit ids]} (analysis_jobs)
    groups: dict = field(default_factory=dict)  # group id -> run ids trained one after another in one job (run_groups)
    twins: dict = field(default_factory=dict)  # run id -> the run id it continues from (spec.twins)
    origins: dict = field(default_factory=dict)  # run id -> {spec field: the config key that set it} (spec_origins)

    @property
    def continued(self) -> set:
        """The runs another run continues from: they keep their final state (runio.write_run)."""
        return set(self.twins.values())

    def origin(self, run_id: str, name: str) -> str | None:
        """The config key (a dotted path) that set spec field ``name`` of run ``run_id``; None
        for a field no config key sets (the code's default, or derived, like a run's id)."""
        return self.origins.get(run_id, {}).get(name)

    def runs_of(self, tid: str) -> list[RunSpec]:
        return self.runs.get(tid, [])

    def job_units(self, tid: str, job: str) -> dict:
        """{unit id: run ids} of one analysis job of target ``tid``."""
        if job not in self.jobs.get(tid, {}):
            raise ConfigError(f"target {tid} of profile {self.profile!r} has no analysis job {job!r}")
        return {u: self.units[tid][u] for u in self.jobs[tid][job]}

    def readers(self, key: str) -> list[str]:
        """The targets that read runs of pack key ``key``."""
        return [tid for tid, specs in self.runs.items() if any(paths.pack_key(s) == key for s in specs)]


# Packed mode trains, per pack key, only the runs of the targets asked for: a pack job is
# named by its key and a label (paths.pack_job), so it is the same job in every process
# that builds it, a cluster job included.
def targets_asked(plan: Plan, asked) -> set:
    """The data-set targets whose runs a Snakemake request needs. ``asked``: the files and
    rules named on the command line (none: the default target). Anything but a target's own
    files (results/<target>/...) asks for every target."""
    found = set()
    for item in asked:
        parts = PurePath(os.path.relpath(item) if os.path.isabs(item) else item).parts
        if len(parts) >= 2 and parts[0] == paths.RESULTS and parts[1] in plan.targets:
            found |= {parts[1]} & set(plan.runs)   # a synthetic target reads no runs
        else:
            return set(plan.runs)
    return found if asked else set(plan.runs)


def pack_label(plan: Plan, key: str, targets: set) -> str:
    """The label of the pack job that trains key's runs for ``targets``."""
    readers = plan.readers(key)
    wanted = [tid for tid in readers if tid in targets]
    return paths.ALL if wanted == readers or not wanted else "+".join(sorted(wanted))


def pack_members(plan: Plan, job: str) -> list[str]:
    """The run ids a pack job trains (its key's runs that its label's targets read)."""
    key, label = paths.split_pack_job(job)
    if key not in plan.packs:
        raise ConfigError(f"pack {job}: no run of profile {plan.profile!r} has pack key {key!r}")
    if label == paths.ALL:
        return plan.packs[key]
    tids = label.split("+")
    unknown = [t for t in tids if t not in plan.runs]
    if unknown:
        raise ConfigError(f"pack {job}: {unknown} are not data-set targets of profile {plan.profile!r}")
    wanted = {s.run_id for t in tids for s in plan.runs_of(t)}
    # A run's twin (of the same pack key: only the stop rule differs) trains in its pack: the
    # run continues from it there, at no cost, as its twin's epochs are the run's first ones.
    for run in list(wanted):
        while run in plan.twins:
            run = plan.twins[run]
            wanted.add(run)
    return [r for r in plan.packs[key] if r in wanted]


def as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def largest_n(tcfg: dict) -> int:
    """The largest N a target's grids ask for."""
    return max(int(n) for g in [tcfg, *tcfg.get("grids", [])] for n in g.get("N", tcfg["N"]))


def dataset_used(tcfg: dict, substitute: dict | None, datasets: dict | None = None):
    """The data set trained on for a target's asked one (a list for a list). A substitute may
    list several stand-ins: the first whose training set (formats.TRAIN_IMAGES of its format)
    holds the target's largest N is used, so a small real set serves the targets it fits and
    a larger one the rest."""
    n = largest_n(tcfg)

    def pick(asked):
        options = as_list((substitute or {}).get(asked, asked))
        if len(options) == 1:  # no choice to make: plan() names an N the set cannot hold
            return options[0]
        for name in options:
            size = TRAIN_IMAGES.get(((datasets or {}).get(name) or {}).get("format"))
            if size is None or n <= size:
                return name
        raise ConfigError(f"config key substitute.{asked}: none of {options} holds N = {n:,} training images; "
                          f"add a larger stand-in to the list")
    used = [pick(d) for d in as_list(tcfg["dataset"])]
    return used if isinstance(tcfg["dataset"], list) else used[0]


def check_grid(tid: str, tcfg: dict, profile_name: str) -> None:
    """A sweep varies one axis; the other must be a single value (the claims read it)."""
    sweep = get(tid).sweep
    if sweep == "grid":
        return
    fixed = "widths" if sweep == "N" else "N"
    if len(tcfg[fixed]) != 1:
        raise ConfigError(f"config key profiles.{profile_name}.targets.{tid}.{fixed} must hold one value "
                          f"(this target sweeps {sweep}), got {tcfg[fixed]}")


def training_settings(profile: dict, recipe: str | None, profile_name: str = "<profile>") -> dict:
    """The profile's default ``train`` settings, or those of its recipe ``recipe`` (a named
    set of overrides: a target's own optimizer, schedule or plain GD)."""
    if recipe is None:
        return dict(profile["train"])
    recipes = profile.get("recipes") or {}
    if recipe not in recipes:
        raise ConfigError(f"a target names recipe {recipe!r}, which config key profiles.{profile_name}.recipes "
                          f"lacks (it has: {', '.join(recipes) or 'none'})")
    return {**profile["train"], **recipes[recipe]}


def spec_for(dataset, model, width, N, labels, init_scale, seed, profile: dict, stop: str = "zero",
             noise: float = 0.0, subset_seed: int | None = None, recipe: str | None = None,
             profile_name: str = "<profile>") -> RunSpec:
    train = training_settings(profile, recipe, profile_name)
    # "full": plain gradient descent, one batch of the whole training subset per step
    batch = int(N) if train["batch_size"] == "full" else int(train["batch_size"])
    return RunSpec(dataset=dataset, model=model, width=int(width), N=int(N), labels=labels,
                   label_seed=int(profile["label_seed"]) if labels == "random" else 0, seed=int(seed),
                   init_scale=float(init_scale), lr=float(train["lr"]), momentum=float(train["momentum"]),
                   batch_size=batch, n_test=profile.get("n_test"),
                   eval_every=int(train.get("eval_every", 5)), noise=float(noise), subset_seed=subset_seed,
                   recipe=recipe, lr_decay=float(train.get("lr_decay", 1.0)),
                   weight_decay=float(train.get("weight_decay", 0.0)), grad_clip=float(train.get("grad_clip", 0.0)),
                   lr_milestones=tuple(train.get("lr_milestones", ())),
                   lr_milestone_factor=float(train.get("lr_milestone_factor", 0.1)),
                   plateau_window=int(train.get("plateau_window", 0)), plateau_fall=float(train.get("plateau_fall", 0.0)),
                   **parse_stop(stop, train["max_epochs"]))


TARGET_KEYS = {"dataset": "dataset", "model": "model", "width": "widths", "N": "N", "labels": "labels",
               "init_scale": "init_scales", "noise": "noise", "recipe": "recipe", "subset_seed": "minimizers",
               "stop_at_zero": "stop", "past_zero": "stop"}  # spec field -> the target's (or grid's) key setting it


def spec_origins(s: RunSpec, keys: dict, profile: dict, profile_name: str, substituted: str | None) -> dict:
    """The config key (dotted path) that set each field of ``s``. ``keys``: each key of the
    target's entry -> its path (a further grid's own keys name that grid); ``substituted``:
    the data set asked for when config key ``substitute`` replaced it. The training settings
    come from the run's recipe where it sets them, else the profile's ``train``; an ``eK``
    stop rule sets the epoch cap."""
    prefix = f"profiles.{profile_name}"
    out = {f: keys[k] for f, k in TARGET_KEYS.items() if k in keys}
    if substituted is not None:
        out["dataset"] = f"substitute.{substituted}"
    recipe = (profile.get("recipes") or {}).get(s.recipe) or {}
    for name in TRAINING_FIELDS:
        if name in recipe:
            out[name] = f"{prefix}.recipes.{s.recipe}.{name}"
        elif name in profile["train"]:
            out[name] = f"{prefix}.train.{name}"
    if not s.stop_at_zero:  # stop rule eK: K epochs, whatever the cap
        out["max_epochs"] = keys["stop"]
    out["seed"] = f"{prefix}.seeds"
    for name in ("label_seed", "n_test"):
        if name in profile and (name != "label_seed" or s.labels == "random"):
            out[name] = f"{prefix}.{name}"
    return out


TRAINING_FIELDS = ("lr", "momentum", "batch_size", "max_epochs", "eval_every", "lr_decay", "weight_decay", "grad_clip",
                   "lr_milestones", "lr_milestone_factor", "plateau_window", "plateau_fall")  # keys of train and recipes


SUBSET_STRIDE = 100  # the i-th further subset of profile seed s is that of seed s + 100 i


def seeds_of(tcfg: dict, profile: dict) -> list[tuple[int, int | None]]:
    """(seed, subset seed) of each run at a grid point: the profile's seeds, or with
    ``minimizers: k`` k seeds b .. b+k-1 on the subset of seed b, for b = s and, with
    ``subsets: m``, the m - 1 further subsets b = s + 100 i of each profile seed s (several
    units of minimizers, so that their spread is a standard error)."""
    k = tcfg.get("minimizers")
    if k is None:
        return [(int(s), None) for s in profile["seeds"]]
    bases = [int(s) + SUBSET_STRIDE * i for s in profile["seeds"] for i in range(int(tcfg.get("subsets", 1)))]
    # The first minimizer is the base seed's own run (no subset option: for the profile seed,
    # the run other targets train at that grid point).
    return [(b + j, b if j else None) for b in bases for j in range(int(k))]


def substituted(asked, used) -> dict:
    """Data set used -> the one asked for, for each that config key ``substitute`` replaced."""
    return {u: a for a, u in zip(as_list(asked), as_list(used)) if u != a}


def run_specs(tid: str, tcfg: dict, profile: dict, substitute: dict | None = None,
              profile_name: str = "<profile>", datasets: dict | None = None, origins: dict | None = None,
              keys: dict | None = None, renamed: dict | None = None) -> list[RunSpec]:
    """The runs of target ``tid``; ``origins``, when given, gets each run's spec_origins.
    ``keys``: each key of ``tcfg`` -> its config path (default: the target's entry);
    ``renamed``: data set used -> the one asked, where ``substitute`` already replaced it."""
    check_grid(tid, tcfg, profile_name)
    keys = keys or {k: f"profiles.{profile_name}.targets.{tid}.{k}" for k in tcfg}
    if "grids" in tcfg:  # further grids of the same target, each overriding some keys of the first
        # one stand-in for the whole target, chosen by its largest N over every grid
        used = dataset_used(tcfg, substitute, datasets)
        base = {k: v for k, v in tcfg.items() if k != "grids"} | {"dataset": used}
        specs = {}
        for i, g in enumerate([{}, *tcfg["grids"]]):
            grid_keys = keys | {k: f"{keys['grids']}[{i - 1}].{k}" for k in g}
            for s in run_specs(tid, {**base, **g}, profile, None, profile_name, None, origins, grid_keys,
                               renamed if renamed is not None else substituted(tcfg["dataset"], used)):
                specs.setdefault(s.run_id, s)
        return list(specs.values())
    stop = tcfg.get("stop", "zero")
    try:
        parse_stop(stop, 1)
    except ValueError as err:
        raise ConfigError(f"config key profiles.{profile_name}.targets.{tid}.stop: {err}") from None
    specs = {}  # two asked data sets may stand for one used (offline): their runs are the same
    used = dataset_used(tcfg, substitute, datasets)
    renamed = renamed if renamed is not None else substituted(tcfg["dataset"], used)
    for ds, w, n, labels, init, noise, recipe, (seed, sub) in itertools.product(
            as_list(used), tcfg["widths"], tcfg["N"], as_list(tcfg["labels"]),
            tcfg.get("init_scales", [1.0]), tcfg.get("noise", [0.0]), as_list(tcfg.get("recipe")),
            seeds_of(tcfg, profile)):
        s = spec_for(ds, tcfg["model"], w, n, labels, init, seed, profile, stop, noise, sub, recipe, profile_name)
        if s.model in BATCH_STATISTICS and s.N % s.batch_size:
            raise ConfigError(f"config key profiles.{profile_name}.targets.{tid}: model {s.model} normalizes with "
                              f"batch statistics, so N must be a multiple of the batch size ({s.batch_size}, "
                              f"recipe {s.recipe or 'train'}); N = {s.N} would end each epoch in a padded batch")
        specs.setdefault(s.run_id, s)
        if origins is not None:
            origins.setdefault(s.run_id, spec_origins(s, keys, profile, profile_name, renamed.get(ds)))
    return list(specs.values())


def analysis_units(tid: str, specs: list[RunSpec]) -> dict:
    """The units of a target's analysis jobs, each named by its first run's id: one run
    each, (unit "seeds") the runs that differ only in seed, or (unit "all") every run of the
    target in one job: for measures that take a second a net, where a job per net would
    spend more on its start than on its work."""
    unit = get(tid).unit
    if unit == "run":
        return {s.run_id: [s.run_id] for s in specs}
    if unit == "all":
        return {specs[0].run_id: [s.run_id for s in specs]}
    if unit == "seeds":
        groups: dict = {}
        for s in sorted(specs, key=lambda s: s.seed):
            key = (s.data_seed,) + tuple(sorted((k, v) for k, v in dataclasses.asdict(s).items()
                                                if k not in ("seed", "subset_seed")))
            groups.setdefault(key, []).append(s.run_id)
        return {ids[0]: ids for ids in groups.values()}
    raise ValueError(f"target {tid}: unknown analysis unit {unit!r}")


def analysis_jobs(units: dict, specs: dict, per: str) -> dict:
    """The analysis jobs of one target's ``units``, each named by its first unit's id: a job
    per unit (``per`` "unit"), or (``per`` "target") one job per data set holding every unit
    of the target on it (a job loads one data set): on a CPU a job's start (torch, pandas, the
    data set: about 2.5 s) can cost more than its units' work. Either way each unit is
    analysed alone with the same settings (analyses.analyze_job): the grouping moves no number."""
    if per == "unit":
        return {u: [u] for u in units}
    jobs: dict = {}
    for u, members in units.items():
        jobs.setdefault(specs[members[0]].dataset, []).append(u)
    return {us[0]: us for us in jobs.values()}


def run_groups(specs: dict, twins: dict, sizes: dict | None) -> dict:
    """Small runs trained several to a job (profile key group_runs), one after another by the
    single-run engine, so each has the numbers of a job of its own: on a CPU a training job
    spends about 2 s starting (torch alone 1.1-1.5 s), more than a small run's training. A
    run is small if its image-epochs at the cap (spec.image_epochs) are at most ``run_max``;
    the small runs of each data set, in run-id order, fill groups of at most ``group_max``
    image-epochs. A run that continues a twin, or that a run continues, trains alone (the
    twin's model.pt is the continuation's input). {"<data set>/group<k>": run ids}."""
    if not sizes:
        return {}
    paired = set(twins) | set(twins.values())
    groups: dict = {}
    filling: dict = {}  # data set -> [its groups so far, image-epochs in the last]
    for run_id in sorted(specs):
        s = specs[run_id]
        if s.image_epochs > sizes["run_max"] or run_id in paired:
            continue
        count, size = filling.get(s.dataset, (0, math.inf))
        if size + s.image_epochs > sizes["group_max"]:
            count, size = count + 1, 0
        filling[s.dataset] = (count, size + s.image_epochs)
        groups.setdefault(f"{s.dataset}/group{count}", []).append(run_id)
    return {g: runs for g, runs in groups.items() if len(runs) > 1}


def plan(config: dict) -> Plan:
    """The profile's targets and runs, checked against the registry and the data sets."""
    name = config["profile"]
    if name not in config["profiles"]:
        raise ConfigError(f"config key 'profile' is {name!r}; choose one of {sorted(config['profiles'])} "
                          f"(the entries of config key 'profiles')")
    profile = config["profiles"][name]
    substitute = config.get("substitute") or {}
    for asked, used in substitute.items():
        for one in as_list(used):
            if one not in config["datasets"]:
                raise ConfigError(f"config key substitute.{asked} names data set {one!r}, which config key "
                                  f"'datasets' lacks")
    targets = {**(profile.get("targets") or {}), **(profile.get("synthetic") or {})}
    if not targets:
        raise ConfigError(f"profile {name!r} names no target: fill config key profiles.{name}.targets or .synthetic")
    runs, origins = {}, {}
    for section in ("targets", "synthetic"):
        for tid, tcfg in (profile.get(section) or {}).items():
            if tid not in REGISTRY:
                raise ConfigError(f"config key profiles.{name}.{section}.{tid}: unknown target; known: "
                                  f"{', '.join(REGISTRY)}")
            if REGISTRY[tid].trains != (section == "targets"):
                right = "targets" if REGISTRY[tid].trains else "synthetic"
                raise ConfigError(f"config key profiles.{name}.{section}.{tid}: this target belongs under "
                                  f"profiles.{name}.{right}")
            if section == "targets":
                runs[tid] = run_specs(tid, tcfg, profile, substitute, name, config["datasets"], origins)
    specs = {}
    for tid, target_runs in runs.items():
        for s in target_runs:
            if s.dataset not in config["datasets"]:
                raise ConfigError(f"target {tid} needs data set {s.dataset!r}: add it under config key 'datasets' "
                                  f"or map it to one there with config key 'substitute'")
            fmt = config["datasets"][s.dataset]["format"]
            if s.N > TRAIN_IMAGES.get(fmt, s.N):
                raise ConfigError(f"config key profiles.{name}.targets.{tid}.N: {s.N} is more than the "
                                  f"{TRAIN_IMAGES[fmt]:,} training images of data set {s.dataset!r} (format {fmt}); "
                                  f"allowed: 1 to {TRAIN_IMAGES[fmt]}")
            specs[s.run_id] = s
    packs = {}
    for run_id in sorted(specs):
        packs.setdefault(paths.pack_key(specs[run_id]), []).append(run_id)
    units = {tid: analysis_units(tid, rs) for tid, rs in runs.items() if REGISTRY[tid].unit}
    jobs = {tid: analysis_jobs(us, specs, profile.get("analysis_jobs", "unit")) for tid, us in units.items()}
    pairs = {r: t.run_id for r, t in twins(specs.values()).items()}
    groups = {} if profile.get("pack") else run_groups(specs, pairs, profile.get("group_runs"))
    return Plan(name, targets, runs, specs, packs, units, jobs, groups, pairs, {r: origins[r] for r in specs})
