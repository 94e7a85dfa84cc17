# Shared values of the DAG: the selected profile and every run the targets need.
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from deeptheory import targets as T  # noqa: E402

ENV = "../../environment.yml"

if config["profile"] not in config["profiles"]:
    raise WorkflowError(
        f"config key 'profile' is {config['profile']!r}; choose one of {sorted(config['profiles'])} "
        f"(the entries of config key 'profiles')"
    )
PROFILE = config["profiles"][config["profile"]]
SUBSTITUTE = config.get("substitute") or {}
for _asked, _used in SUBSTITUTE.items():
    if _used not in config["datasets"]:
        raise WorkflowError(
            f"config key substitute.{_asked} names data set {_used!r}, which config key 'datasets' lacks"
        )
SYNTHETIC = PROFILE.get("synthetic") or {}
DATA_TARGETS = PROFILE.get("targets") or {}
TARGET_IDS = list(DATA_TARGETS) + list(SYNTHETIC)
if not TARGET_IDS:
    raise WorkflowError(f"profile {config['profile']!r} names no target: fill config key profiles.{config['profile']}.targets or .synthetic")
try:
    RUNS = {t: T.run_specs(t, c, PROFILE, SUBSTITUTE) for t, c in DATA_TARGETS.items()}
except ValueError as err:
    raise WorkflowError(str(err))
for _t, _specs in RUNS.items():
    for _s in _specs:
        if _s.dataset not in config["datasets"]:
            raise WorkflowError(
                f"target {_t} needs data set {_s.dataset!r}: add it under config key 'datasets' "
                f"or map it to one there with config key 'substitute'"
            )
SPECS = {s.run_id: s for specs in RUNS.values() for s in specs}
# Packed mode: one job per architecture (data set, family, width) trains all its runs.
PACKED = bool(PROFILE.get("pack", False))
PACKS = {}
for _s in sorted(SPECS.values(), key=lambda s: s.run_id):
    PACKS.setdefault(f"{_s.dataset}/{_s.model}_w{_s.width}", []).append(_s)


def run_dir(spec):
    return f"results/runs/{spec.run_id}"


def metrics_of(tid):
    return [f"{run_dir(s)}/metrics.csv" for s in RUNS[tid]]


def training_outputs(tid):
    """What a target waits for: its runs' metrics, or in packed mode the packs holding them."""
    if not PACKED:
        return metrics_of(tid)
    return sorted({f"results/packs/{s.dataset}/{s.model}_w{s.width}.csv" for s in RUNS[tid]})


def spec_of(wildcards):
    """The spec behind a train job's wildcards (its run id)."""
    run_id = (
        f"{wildcards.dataset}/{wildcards.model}_w{wildcards.width}_N{wildcards.N}_"
        f"{wildcards.labels}_i{wildcards.init}_s{wildcards.seed}"
    )
    if run_id not in SPECS:
        raise WorkflowError(f"run {run_id} is in no target of profile {config['profile']!r}")
    return SPECS[run_id]


def device():
    return config.get("device", "auto")
