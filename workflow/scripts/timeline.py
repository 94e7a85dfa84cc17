"""Draw the build's timeline and write the time per kind of job (rule timeline)."""

from deeptheory import logs, timeline

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = logs.setup(sm.log[0], "timeline")
summary = timeline.write(".", sm.output.png, sm.output.csv)
log.info("%s", timeline.text(summary, top=5))
