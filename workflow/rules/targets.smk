# Every target, data-set or synthetic, is built by one rule through one contract
# (deeptheory.targets, deeptheory.report); then one table gathers every claim.


rule target:
    input:
        unpack(target_analyses),
        runs=target_runs,
    output:
        png=report(
            "results/{target}/figure.png",
            caption="../report/target.rst",
            category="Targets",
            subcategory="{target}",
            labels={"target": "{target}", "file": "figure"},
        ),
        pdf=report(
            "results/{target}/figure.pdf",
            caption="../report/target.rst",
            category="Targets",
            subcategory="{target}",
            labels={"target": "{target}", "file": "figure (pdf)"},
        ),
        table=report(
            "results/{target}/table.csv",
            caption="../report/target.rst",
            category="Targets",
            subcategory="{target}",
            labels={"target": "{target}", "file": "table"},
        ),
        table_md="results/{target}/table.md",
        claims=report(
            "results/{target}/claims.csv",
            caption="../report/target.rst",
            category="Targets",
            subcategory="{target}",
            labels={"target": "{target}", "file": "claims"},
        ),
        provenance=report(
            "results/{target}/provenance.json",
            caption="../report/target.rst",
            category="Targets",
            subcategory="{target}",
            labels={"target": "{target}", "file": "provenance"},
        ),
    params:
        target_cfg=lambda w: PLAN.targets[w.target],
        claims_cfg=config["claims"],
        seed=PROFILE["seeds"][0],
        requested=lambda w: PLAN.targets[w.target].get("dataset"),  # a name, or a list of them
        used=lambda w: grid.dataset_used(PLAN.targets[w.target], SUBSTITUTE, config["datasets"])
        if PLAN.targets[w.target].get("dataset") else None,
        descriptions={k: v["description"] for k, v in config["datasets"].items() if v.get("description")},
        profile=config["profile"],
        device=config.get("device", "auto"),
        caption=target_caption,
    threads: 1
    # A cluster job, not a local rule: synthetic targets compute (chains, small nets) for
    # minutes; a data-set target only plots. It asks for no GPU (deeptheory.devices.visible_device).
    resources:
        mem_mb=2000,
        runtime=60,
    log:
        "logs/targets/{target}.log",
    benchmark:
        "benchmarks/targets/{target}.tsv"
    conda:
        ENV
    script:
        "../scripts/target.py"


rule claims:
    input:
        expand("results/{target}/claims.csv", target=TARGET_IDS),
    output:
        csv=report("results/claims.csv", caption="../report/claims.rst", category="Claims"),
        md="results/claims.md",
    log:
        "logs/claims.log",
    benchmark:
        "benchmarks/claims.tsv"
    localrule: True
    conda:
        ENV
    script:
        "../scripts/claims.py"
