# Training: one job per run, or in packed mode one job per pack (the runs of one
# architecture and batch size that the targets asked for read, deeptheory.grid.pack_members).
# Either way every run's files end up in results/runs/<run id>/, which is what targets read.


if not PACKED:

    rule train:
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
        threads: 1
        resources:
            mem_mb=train_resources("train_mem_mb", 4000),
            gpu=TRAIN_GPUS,
        log:
            "logs/train/{run}.log",
        conda:
            ENV
        script:
            "../scripts/train.py"

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
        threads: 1
        resources:
            mem_mb=train_resources("train_mem_mb", 4000),
            gpu=TRAIN_GPUS,
        log:
            "logs/train/{pack}.pack.log",
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
        conda:
            ENV
        script:
            "../scripts/run_from_pack.py"
