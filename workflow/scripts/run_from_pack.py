"""Put one run's files from its pack's folder into results/runs/<run id>/ (rule run_from_pack)."""

from pathlib import Path

from deeptheory import logs, paths, runio

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = logs.setup(sm.log[0], sm.wildcards.run)
runio.link_run(Path(sm.input[0]) / sm.wildcards.run, Path(sm.output.metrics).parent)
paths.checkpoint(sm.wildcards.run).unlink(missing_ok=True)  # kept by train_pack until now
log.info("linked %s from %s", sm.wildcards.run, sm.input[0])
