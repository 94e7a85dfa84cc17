# Analyses of trained nets: one job per unit of a target's runs (a run, or the runs that
# differ only in seed), or, where the profile says analysis_jobs: target, one job per target
# and data set holding its units (deeptheory.grid.analysis_jobs); each reads its runs' weights
# and the data they were trained on and writes a table and arrays (deeptheory.analyses). The
# target reads those, not the nets.


rule analyze:
    input:
        unpack(analysis_inputs),
    output:
        table="results/analyses/{target}/{run}.csv",
        arrays="results/analyses/{target}/{run}.npz",
    params:
        target_cfg=lambda w: PLAN.targets[w.target],
        units=analysis_units,
        seed=PROFILE["seeds"][0],
        device=config.get("device", "auto"),
    threads: 1
    # Forward and backward passes over a small subset on the CPU (a GPU only on the GPU path,
    # as for training: deeptheory.devices.visible_device).
    resources:
        mem_mb=2000,
        runtime=60,
    log:
        "logs/analyses/{target}/{run}.log",
    benchmark:
        "benchmarks/analyses/{target}/{run}.tsv"
    conda:
        ENV
    script:
        "../scripts/analyze.py"
