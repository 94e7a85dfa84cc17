# Shared values of the DAG: the profile's plan (targets, runs, packs) and input functions; the policies they
# apply live in the library (deeptheory.grid, packing, datacheck, gpu), so the DAG is a function of config,
# the asked-for targets and the finished runs' records.
import re
import sys

from snakemake.exceptions import WorkflowError

from deeptheory import grid, packing, paths  # noqa: E402  (plain data: no pandas, matplotlib or torch)
from deeptheory.spec import RUN_ID_REGEX  # noqa: E402
from deeptheory.targets import REGISTRY, caption as registry_caption  # noqa: E402

ENV = "../envs/deeptheory.yaml"

try:
    PLAN = grid.plan(config)
except grid.ConfigError as err:
    raise WorkflowError(str(err))
PROFILE = config["profiles"][config["profile"]]
SUBSTITUTE = config.get("substitute") or {}
TARGET_IDS = list(PLAN.targets)
PACKED = bool(PROFILE.get("pack", False))


wildcard_constraints:
    dataset="[a-z0-9-]+",
    run=RUN_ID_REGEX,
    target="|".join(TARGET_IDS),
    pack=paths.PACK_JOB_REGEX,


# Small runs trained several to a job (profile key group_runs, deeptheory.grid.run_groups): rule
# train makes every other run, rule train_group_<k> the runs of group k.
GROUPED = {r for runs in PLAN.groups.values() for r in runs}
ALONE = "|".join(re.escape(r) for r in sorted(PLAN.specs) if r not in GROUPED) or "(?!)"  # (?!): matches nothing


def spec_of(wildcards):
    """The spec behind a run job's wildcards (its run id)."""
    if wildcards.run not in PLAN.specs:
        raise WorkflowError(f"run {wildcards.run} is in no target of profile {config['profile']!r}")
    return PLAN.specs[wildcards.run]


def job_priority(run_ids):
    """Largest first: a training job's priority is its runs' image-epochs at the cap
    (spec.image_epochs), in thousands. Snakemake starts ready jobs of higher priority first,
    so the longest runs (the build's longest chain among them) do not start last and leave
    one core to finish them alone; the small jobs fill in around them."""
    return sum(PLAN.specs[r].image_epochs for r in run_ids) // 1000


def run_priority(wildcards):
    return job_priority([spec_of(wildcards).run_id])


def data_of(dataset):
    return {"data": f"data/cache/{dataset}.npz", "verified": f"data/raw/{dataset}/verified.json"}


def run_data(wildcards):
    """A run's data set and, for a run that continues its twin (grid.Plan.twins: the same run
    with a shorter stop rule), the twin's weights, which carry its final state: the twin
    trains first, and a changed twin reruns the run."""
    spec = spec_of(wildcards)
    twin = PLAN.twins.get(spec.run_id)
    return {**data_of(spec.dataset), **({"twin": str(paths.run_dir(twin) / "model.pt")} if twin else {})}


def pack_members(wildcards):
    try:
        return grid.pack_members(PLAN, wildcards.pack)
    except grid.ConfigError as err:
        raise WorkflowError(str(err))


def pack_data(wildcards):
    return data_of(PLAN.specs[pack_members(wildcards)[0]].dataset)


PACKS = packing.PackSources(PLAN)  # the pack folders, read from their records (deeptheory.packing)


def run_pack(wildcards):
    """The pack folder a run's files come from (packed mode): deeptheory.packing."""
    return str(PACKS.folder(spec_of(wildcards), grid.targets_asked(PLAN, workflow.dag_settings.targets)))


def target_runs(wildcards):
    """What a target reads: the metrics of each of its runs (nothing for synthetic ones)."""
    return [str(paths.run_dir(s.run_id) / "metrics.csv") for s in PLAN.runs_of(wildcards.target)]


def every_run_file(wildcards=None):
    """Each run's files, asked for by the default target (all), which asks for every target:
    Snakemake rebuilds a missing intermediate only for a job that must run, so a deleted
    metrics.csv under a built target stayed missing until the default target named it."""
    return [str(paths.run_dir(r) / name) for r in PLAN.specs
            for name in ("metrics.csv", "model.pt", "provenance.json")]


def build_outputs(wildcards=None):
    """What a whole build makes: the claims table, every target's figure, every run's files."""
    return ["results/claims.csv", *expand("results/{target}/figure.png", target=TARGET_IDS), *every_run_file()]


def target_analyses(wildcards):
    """A target with an analysis also reads each analysis job's table and arrays (rule analyze)."""
    jobs = PLAN.jobs.get(wildcards.target, {})
    return {"analyses": [str(paths.analysis(wildcards.target, j, ".csv")) for j in jobs],
            "arrays": [str(paths.analysis(wildcards.target, j, ".npz")) for j in jobs]}


def analysis_units(wildcards):
    """{unit id: run ids} of one analysis job (grid.Plan.jobs)."""
    try:
        return PLAN.job_units(wildcards.target, wildcards.run)
    except grid.ConfigError as err:
        raise WorkflowError(str(err))


def analysis_inputs(wildcards):
    """One analysis job's runs (their weights and metrics) and their data set."""
    members = [r for runs in analysis_units(wildcards).values() for r in runs]
    return {"models": [str(paths.run_dir(r) / "model.pt") for r in members],
            "metrics": [str(paths.run_dir(r) / "metrics.csv") for r in members],
            **data_of(PLAN.specs[members[0]].dataset)}


def target_caption(wildcards):
    """The target's caption text (deeptheory.targets.caption, from its registry entry), shown by the report."""
    return registry_caption(REGISTRY[wildcards.target])


def train_resources(name, default):
    return config.get("resources", {}).get(name, default)


# Raw data checked at every start (deeptheory.datacheck). A cluster job's own Snakemake
# skips it: the main process checked, and a fetch may be writing an archive meanwhile.
if not workflow.remote_exec:
    from deeptheory import datacheck  # noqa: E402  (audit's checks: only where they run)

    try:
        datacheck.check_fetched_data(PLAN, config["datasets"], sys.argv[1:])
    except datacheck.RawDataError as err:
        raise WorkflowError(str(err))


# Several training jobs on one GPU, with a memory guard (docs/PERFORMANCE.md, "Several packs
# on one GPU"; the policy and its numbers live in deeptheory.gpu). When training runs on
# CUDA, every training job declares resource gpu=1 and gpu_mem_mb (deeptheory.gpu's upper
# bound of its GPU memory, from its runs' specs), and a local run offers gpu=packs_per_gpu
# (config resources.packs_per_gpu) and gpu_mem_mb = the GPU's memory (nvidia-smi, or config
# resources.gpu_mem_mb) less a margin, so Snakemake's scheduler never starts more packs than
# the slots or than the memory holds. `--resources gpu=N gpu_mem_mb=M` wins (setdefault).
# On a cluster (the main Snakemake with an executor's --jobs: its nodes are set; a job's own
# Snakemake runs with --mode remote) each job gets its own GPU: no limit here, and no
# gpu_mem_mb. There the machine that submits says nothing about the nodes, so `device: auto`
# means the CPU, and the GPU path is the user's own `--config device=cuda`: training jobs then
# ask for one GPU each (resource gpu, the SLURM executor's --gpus). The device lives in
# config, not in a profile, because a profile's `config:` is dropped whenever the user passes
# --config.
from deeptheory import gpu  # noqa: E402

ON_CLUSTER = workflow.remote_exec or workflow.resource_settings.nodes is not None
TRAIN_GPUS = (max(1, train_resources("train_gpus", 0)) if gpu.trains_on_cuda(config.get("device", "auto"), ON_CLUSTER)
              else train_resources("train_gpus", 0))
SHARED_GPU = bool(TRAIN_GPUS) and not ON_CLUSTER
if SHARED_GPU:
    for _name, _limit in gpu.local_limits(config).items():
        workflow.global_resources.setdefault(_name, _limit)
    from snakemake.logging import logger  # noqa: E402

    logger.info(gpu.limits_notice({k: getattr(workflow.global_resources.get(k), "value", workflow.global_resources.get(k))
                                   for k in ("gpu", "gpu_mem_mb")}))


def gpu_mem_of(run_ids):
    """A training job's resource gpu_mem_mb: deeptheory.gpu's estimate on a shared GPU, else 0."""
    if not SHARED_GPU:
        return 0
    specs = [PLAN.specs[r] for r in run_ids]
    return gpu.job_memory_mb(specs, config["datasets"].get(specs[0].dataset, {}).get("format"))
