# One rule per target (named after its id), then one table of every claim.

for _tid in DATA_TARGETS:

    rule:
        name:
            f"target_{_tid.replace('-', '_')}"
        input:
            training_outputs(_tid),
        output:
            png=f"results/{_tid}/figure.png",
            pdf=f"results/{_tid}/figure.pdf",
            table=f"results/{_tid}/table.csv",
            table_md=f"results/{_tid}/table.md",
            claims=f"results/{_tid}/claims.csv",
            provenance=f"results/{_tid}/provenance.json",
        params:
            metrics=metrics_of(_tid),
            target=_tid,
            target_cfg=DATA_TARGETS[_tid],
            claims_cfg=config["claims"],
            substitute=SUBSTITUTE,
            profile=config["profile"],
        log:
            f"logs/targets/{_tid}.log",
        conda:
            ENV
        script:
            "../scripts/target.py"


for _tid in SYNTHETIC:

    rule:
        name:
            f"target_{_tid.replace('-', '_')}"
        output:
            png=f"results/{_tid}/figure.png",
            pdf=f"results/{_tid}/figure.pdf",
            table=f"results/{_tid}/table.csv",
            table_md=f"results/{_tid}/table.md",
            claims=f"results/{_tid}/claims.csv",
            provenance=f"results/{_tid}/provenance.json",
        params:
            target=_tid,
            target_cfg=SYNTHETIC[_tid],
            claims_cfg=config["claims"],
            seed=PROFILE["seeds"][0],
            profile=config["profile"],
        threads: 1
        log:
            f"logs/targets/{_tid}.log",
        conda:
            ENV
        script:
            "../scripts/synthetic.py"


rule claims:
    input:
        expand("results/{target}/claims.csv", target=TARGET_IDS),
    output:
        csv="results/claims.csv",
        md="results/claims.md",
    log:
        "logs/claims.log",
    conda:
        ENV
    script:
        "../scripts/claims.py"
