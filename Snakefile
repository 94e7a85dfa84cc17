# deeptheory: rebuild the experiments of the CBMM "Theory of Deep Learning" memos.
#   snakemake --cores all                                   # quick profile, official sources
#   snakemake --cores all --configfile config/offline.yaml  # quick profile, local sources only
#   snakemake --cores all --config profile=paper            # the memos' grids (one GPU)
from snakemake.utils import min_version, validate

min_version("8.20")


# Found beside this file even when --directory runs the DAG elsewhere.
configfile: f"{workflow.basedir}/config/config.yaml"


validate(config, "config/schema/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/targets.smk"


rule all:
    default_target: True
    input:
        "results/claims.csv",
        expand("results/{target}/figure.png", target=TARGET_IDS),
