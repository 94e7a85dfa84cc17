# deeptheory: rebuild the experiments of the CBMM "Theory of Deep Learning" memos. The
# workflow's entry point, at the root so that `snakemake` from a clone finds it; its rules,
# scripts, schemas and captions live under workflow/.
#   snakemake --cores all                                   # quick profile, official sources
#   snakemake --cores all --configfile config/offline.yaml  # quick profile, local sources only
#   snakemake --cores all --config profile=paper            # the memos' grids (one GPU)
# Targets, keys and layout: README.md, config/README.md, docs/CATALOG.md.
import sys
import time
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("8.20")
STARTED = time.time()
# This checkout's library, for the DAG and for every job's script (they inherit the
# environment): another checkout's editable install must not train this one's runs, and
# provenance names the commit of the code that ran.
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
from deeptheory import configcheck, paths  # noqa: E402

paths.put_first_on_pythonpath(SRC)

# Each problem of the config in one line (file, key, value, what is allowed), read before
# Snakemake's own reading of config.yaml, which names no file or line.
try:
    CONFIG_SOURCES = configcheck.workflow_sources(workflow)
except configcheck.ConfigError as err:
    raise WorkflowError(str(err))


# Found in the checkout even when --directory runs the DAG elsewhere.
configfile: f"{workflow.basedir}/config/config.yaml"


try:  # the one loader's config (merged as Snakemake merged it, validated, the schema's defaults)
    config.update(configcheck.load_sources(CONFIG_SOURCES))
except configcheck.ConfigError as err:
    raise WorkflowError(str(err))


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/analyses.smk"
include: "workflow/rules/targets.smk"
include: "workflow/rules/timeline.smk"


rule all:
    default_target: True
    input:
        build_outputs(),
        "results/timeline.png",


# A fetch that fails (most often: no network) ends the build with its own message, last,
# instead of mid-log above Snakemake's "At least one job did not complete successfully".
onerror:
    from deeptheory.fetch import fetch_failures

    failures = fetch_failures("data", STARTED)
    if failures:
        raise WorkflowError("a data set could not be fetched:\n" + "\n".join(failures))
