# Training: one job per run (small runs several to a job where the profile says group_runs),
# or in packed mode one job per pack (the runs of one architecture and batch size that the
# targets asked for read, deeptheory.grid.pack_members).
# Either way every run's files end up in results/runs/<run id>/, which is what targets read.
#
# Every job asks for what it uses (config key `resources`, config/README.md): TRAIN_THREADS
# cores (torch.set_num_threads follows them), memory and runtime (a SLURM job's --mem and
# --time) and, on the GPU path, one GPU. They live here, not in profiles/slurm: a user's own
# --set-resources replaces a profile's, but only overrides the keys it names of a rule's.
TRAIN_THREADS = train_resources("train_threads", 1)


if not PACKED:

    rule train:
        wildcard_constraints:
            run=ALONE,
        input:
            unpack(run_data),
        output:
            metrics="results/runs/{run}/metrics.csv",
            model="results/runs/{run}/model.pt",
            provenance="results/runs/{run}/provenance.json",
        params:
            spec=lambda w: spec_of(w).to_dict(),
            device=config.get("device", "auto"),
            profile=config["profile"],
        threads: TRAIN_THREADS
        priority: run_priority
        resources:
            mem_mb=train_resources("train_mem_mb", 16000 if TRAIN_GPUS else 2000),
            runtime=train_resources("train_runtime", 240),
            gpu=TRAIN_GPUS,
            gpu_mem_mb=lambda w: gpu_mem_of([spec_of(w).run_id]),
        log:
            "logs/train/{run}.log",
        benchmark:
            "benchmarks/train/{run}.tsv"
        conda:
            ENV
        script:
            "../scripts/train.py"

    # Small runs, several to a job (profile key group_runs; deeptheory.grid.run_groups): one
    # rule per group, trained one after another by the single-run engine, each into its own
    # results/runs/<run id>/ as rule train would (the same numbers), after one start and one
    # data load. No wildcards: each group's outputs are listed.
    for _k, (_group, _members) in enumerate(PLAN.groups.items(), 1):

        rule:
            name:
                f"train_group_{_k}"
            input:
                **data_of(PLAN.specs[_members[0]].dataset),
            output:
                [str(paths.run_dir(r) / name) for r in _members for name in paths.RUN_FILES],
            params:
                group=_group,
                specs=[PLAN.specs[r].to_dict() for r in _members],
                device=config.get("device", "auto"),
                profile=config["profile"],
            threads: TRAIN_THREADS
            priority: job_priority(_members)
            resources:
                mem_mb=train_resources("train_mem_mb", 16000 if TRAIN_GPUS else 2000),
                runtime=train_resources("train_runtime", 240),
                gpu=TRAIN_GPUS,
                gpu_mem_mb=gpu_mem_of(_members),
            log:
                f"logs/train/{_group}.group.log",
            benchmark:
                f"benchmarks/train/{_group}.group.tsv"
            conda:
                ENV
            script:
                "../scripts/train_group.py"

else:

    # One job trains a whole pack in one vmap-ed pass (deeptheory.packed); its folder holds
    # every run's files, declared as a directory output.
    rule train_pack:
        input:
            unpack(pack_data),
        output:
            directory("results/packs/{pack}"),
        params:
            specs=lambda w: [PLAN.specs[r].to_dict() for r in pack_members(w)],
            device=config.get("device", "auto"),
            profile=config["profile"],
        threads: TRAIN_THREADS
        resources:
            mem_mb=train_resources("train_mem_mb", 32000 if TRAIN_GPUS else 4000),
            runtime=train_resources("train_runtime", 720),
            gpu=TRAIN_GPUS,
            gpu_mem_mb=lambda w: gpu_mem_of(pack_members(w)),
        log:
            "logs/train/{pack}.pack.log",
        benchmark:
            "benchmarks/train/{pack}.pack.tsv"
        conda:
            ENV
        script:
            "../scripts/train_pack.py"

    # A run's files, taken from its pack's folder (hard links: no second copy on disk).
    rule run_from_pack:
        input:
            run_pack,
        output:
            metrics="results/runs/{run}/metrics.csv",
            model="results/runs/{run}/model.pt",
            provenance="results/runs/{run}/provenance.json",
        localrule: True
        log:
            "logs/train/{run}.from_pack.log",
        benchmark:
            "benchmarks/train/{run}.from_pack.tsv"
        conda:
            ENV
        script:
            "../scripts/run_from_pack.py"
