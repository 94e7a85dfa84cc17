# One job per run: the run id holds the grid coordinates, params the shared settings.


wildcard_constraints:
    dataset="[a-z0-9-]+",
    model="[a-z0-9]+",
    width="[0-9]+",
    N="[0-9]+",
    labels="natural|random",
    init="[0-9.]+",
    seed="[0-9]+",


RUN = "{dataset}/{model}_w{width}_N{N}_{labels}_i{init}_s{seed}"


if PACKED:

    # One job per architecture: its runs train together in one pass (deeptheory.packed).
    rule train_pack:
        input:
            data="data/cache/{dataset}.npz",
            verified="data/raw/{dataset}/verified.json",
        output:
            "results/packs/{dataset}/{model}_w{width}.csv",
        params:
            specs=lambda w: [s.to_dict() for s in PACKS[f"{w.dataset}/{w.model}_w{w.width}"]],
            results_root="results",
            checkpoint_dir="results/checkpoints",
            device=device(),
            profile=config["profile"],
        threads: 1
        resources:
            mem_mb=config.get("resources", {}).get("train_mem_mb", 4000),
            gpu=config.get("resources", {}).get("train_gpus", 0),
        log:
            "logs/train/{dataset}/{model}_w{width}.pack.log",
        conda:
            ENV
        script:
            "../scripts/train_pack.py"


rule train:
    input:
        data="data/cache/{dataset}.npz",
        verified="data/raw/{dataset}/verified.json",
    output:
        metrics=f"results/runs/{RUN}/metrics.csv",
        model=f"results/runs/{RUN}/model.pt",
        provenance=f"results/runs/{RUN}/provenance.json",
    params:
        spec=lambda w: spec_of(w).to_dict(),
        checkpoint=lambda w: f"results/checkpoints/{spec_of(w).run_id}.pt",
        device=device(),
        profile=config["profile"],
    threads: 1
    resources:
        mem_mb=config.get("resources", {}).get("train_mem_mb", 4000),
        gpu=config.get("resources", {}).get("train_gpus", 0),
    log:
        f"logs/train/{RUN}.log",
    conda:
        ENV
    script:
        "../scripts/train.py"
