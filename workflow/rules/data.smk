# Raw archives through DVC into data/raw/<dataset>/, verified, then decoded once.


# Local: compute nodes of a cluster often have no internet access.
rule fetch_dataset:
    output:
        "data/raw/{dataset}/verified.json",
    params:
        dataset_cfg=lambda w: config["datasets"][w.dataset],
    log:
        "logs/fetch/{dataset}.log",
    benchmark:
        "benchmarks/fetch/{dataset}.tsv"
    # above every training job's (job_priority): they all wait on a data set
    priority: job_priority(PLAN.specs) + 1
    localrule: True
    conda:
        ENV
    script:
        "../scripts/fetch.py"


rule decode_dataset:
    input:
        "data/raw/{dataset}/verified.json",
    output:
        "data/cache/{dataset}.npz",
    params:
        fmt=lambda w: config["datasets"][w.dataset]["format"],
    log:
        "logs/decode/{dataset}.log",
    benchmark:
        "benchmarks/decode/{dataset}.tsv"
    priority: job_priority(PLAN.specs) + 1  # as fetch_dataset's
    localrule: True
    conda:
        ENV
    script:
        "../scripts/decode.py"
